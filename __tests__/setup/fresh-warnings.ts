/**
 * Warnings are printed once per process (README "Warnings"), and to the library a test file is
 * one process: without this, a warning one test caused would be missing from the next test
 * that checks for it, and tests would pass or fail by the order they run in. Every test starts
 * with none printed. (`freshLib()` copies of the library start fresh anyway.)
 */
import { forgetPrintedWarnings } from '../../lib/observability/warnings';

beforeEach(() => {
  forgetPrintedWarnings();
});
