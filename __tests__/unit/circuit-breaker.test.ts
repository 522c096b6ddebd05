/**
 * The circuit breaker in front of a remote store (`GuardedStore`): after a failure, calls fail
 * at once for a second; then ONE call probes the store (half-open) while the others keep
 * failing at once, so that during a hang only that call pays the timeout. A probe that
 * succeeds closes the breaker. Time is the injectable clock; the store is a stand-in whose
 * calls hang or answer on command.
 */
import { GuardedStore } from '../../lib/stores/guarded';
import type { EntryStore } from '../../lib/stores/types';

function setup() {
  let time = 0;
  const calls = { get: 0 };
  let hanging = true;
  const inner = {
    get: async () => {
      calls.get += 1;
      if (hanging) await new Promise(() => {}); // never answers
      return undefined;
    },
  } as unknown as EntryStore;
  const events: string[] = [];
  const store = new GuardedStore(inner, {
    timeout: 50,
    now: () => time,
    onOutage: () => events.push('outage'),
    onRecovery: () => events.push('recovery'),
  });
  return {
    store,
    calls,
    events,
    advance: (ms: number) => {
      time += ms;
    },
    answer: () => {
      hanging = false;
    },
  };
}

describe('the store circuit breaker', () => {
  test('after the pause, one call probes the hanging store; the others fail at once', async () => {
    const s = setup();
    await s.store.get('/a'); // times out: the breaker opens
    expect(s.events).toEqual(['outage']);
    expect(s.calls.get).toBe(1);

    await s.store.get('/a'); // within the pause: not even tried
    expect(s.calls.get).toBe(1);

    s.advance(1001);
    let probeSettled = false;
    const probe = s.store.get('/a').finally(() => {
      probeSettled = true;
    }); // the first call after the pause probes…
    const others = await Promise.all([2, 3, 4, 5].map(() => s.store.get('/a')));
    // …and the four that come while it hangs do not wait for it: they failed open (no value)
    // while the probe was still waiting on the store, and never reached the store themselves.
    expect(others).toEqual([undefined, undefined, undefined, undefined]);
    expect(probeSettled).toBe(false);
    expect(s.calls.get).toBe(2);
    await probe; // its own timeout (50 ms) ends it
    expect(s.calls.get).toBe(2);
  });

  test('a probe that succeeds closes the breaker', async () => {
    const s = setup();
    await s.store.get('/a');
    s.advance(1001);
    s.answer();
    await s.store.get('/a');
    expect(s.events).toEqual(['outage', 'recovery']);
    await Promise.all([1, 2, 3].map(() => s.store.get('/a')));
    expect(s.calls.get).toBe(5);
  });
});
