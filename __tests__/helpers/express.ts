import type { Express } from 'express';
import express5 from 'express';

// A second copy of Express 4 is installed under the alias `express4` (package.json), so every
// behaviour can be checked against both majors in one run.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require('express4') as typeof express5;

export type ExpressFactory = () => Express;

/** `describe.each(expressVersions)('... (%s)', (_name, express) => ...)` */
export const expressVersions: [string, ExpressFactory][] = [
  ['express 5', () => express5()],
  ['express 4', () => express4() as unknown as Express],
];
