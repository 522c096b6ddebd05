/**
 * A fresh copy of the library, with no warning printed yet: warnings are printed once per
 * process, so what one test printed could otherwise hide a warning from the next.
 */
type Lib = typeof import('../../lib');

export function freshLib(): Lib {
  let lib: Lib | undefined;
  jest.isolateModules(() => {
    lib = require('../../lib') as Lib;
  });
  if (lib === undefined) throw new Error('could not load lib/');
  return lib;
}
