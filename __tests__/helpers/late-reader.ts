import type Keyv from 'keyv';
import { deferred } from './deferred';

/**
 * The same Keyv, whose next `get` of `key` reads at once but answers only when the test says
 * so: an instance that looked a page up just before another one stored its render (on a busy
 * server, a millisecond is enough). Makes cross-instance races happen every time.
 */
export function lateReader(keyv: Keyv) {
  let armed: { key: string; read: () => void; release: Promise<void> } | undefined;
  const wrapper = {
    store: keyv.store,
    namespace: keyv.namespace,
    get: async (key: string) => {
      const value = await keyv.get(key);
      const pause = armed;
      if (pause !== undefined && pause.key === key) {
        armed = undefined;
        pause.read();
        await pause.release;
      }
      return value;
    },
    set: (key: string, value: unknown) => keyv.set(key, value),
    delete: (key: string) => keyv.delete(key),
    getMany: (keys: string[]) => keyv.getMany(keys),
    on: (event: 'error', listener: (error: unknown) => void) => keyv.on(event, listener),
  };
  return {
    keyv: wrapper,
    pauseNextGet(key: string) {
      const read = deferred();
      const release = deferred();
      armed = { key, read: read.resolve, release: release.promise };
      return { read: read.promise, release: release.resolve };
    },
  };
}
