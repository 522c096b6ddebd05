/**
 * The lines `debug('express-isr')` writes while each test of a file runs (DEBUG=express-isr),
 * without colours, date or namespace: `recordDebugLines()` at the top of a test file installs
 * the hooks and returns the array, emptied before each test.
 */
import { format } from 'node:util';
import createDebug from 'debug';

export function recordDebugLines(): string[] {
  const lines: string[] = [];
  let originalLog: typeof createDebug.log;
  let previousNamespaces = '';
  beforeEach(() => {
    lines.length = 0;
    originalLog = createDebug.log;
    previousNamespaces = createDebug.disable();
    createDebug.enable(previousNamespaces ? `${previousNamespaces},express-isr` : 'express-isr');
    createDebug.log = (...args: unknown[]) => {
      const line = format(...args)
        // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colours, when on a TTY
        .replace(/\u001b\[[0-9;]*m/g, '')
        .trim();
      const mark = line.indexOf('express-isr ');
      lines.push(mark === -1 ? line : line.slice(mark + 'express-isr '.length));
    };
  });
  afterEach(() => {
    createDebug.log = originalLog;
    createDebug.disable();
    if (previousNamespaces) createDebug.enable(previousNamespaces);
  });
  return lines;
}
