/**
 * The waiting room behind single flight: everyone waiting for a render is answered with its
 * outcome, in the order they came, and nobody waits longer than the patience given (one timer
 * for all of them). Jest's fake timers drive both `setTimeout` and `performance.now()`.
 */
import { WaitingRoom } from '../../lib/render/waiting-room';

describe('WaitingRoom', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('everyone waiting gets the outcome, first come first served', () => {
    const room = new WaitingRoom<string>(1000, fail);
    const told: string[] = [];
    for (const name of ['a', 'b', 'c']) room.join((outcome) => told.push(`${name}:${outcome}`));
    expect(told).toEqual([]);
    room.open('page');
    expect(told).toEqual(['a:page', 'b:page', 'c:page']);
  });

  test('someone who comes in after the outcome is known is told at once', () => {
    const room = new WaitingRoom<string>(1000, fail);
    room.open('page');
    const told: (string | undefined)[] = [];
    room.join((outcome) => told.push(outcome));
    expect(told).toEqual(['page']);
  });

  test('only the first outcome counts', () => {
    const room = new WaitingRoom<string>(1000, fail);
    const told: (string | undefined)[] = [];
    room.join((outcome) => told.push(outcome));
    room.open('first');
    room.open('second');
    room.join((outcome) => told.push(outcome));
    expect(told).toEqual(['first', 'first']);
  });

  test('each waiter is let go with undefined once their own patience runs out, the others keep waiting', () => {
    const room = new WaitingRoom<string>(100, fail);
    const told: string[] = [];
    room.join((outcome) => told.push(`early:${outcome}`));
    jest.advanceTimersByTime(60);
    room.join((outcome) => told.push(`late:${outcome}`));

    jest.advanceTimersByTime(39); // 99 ms for the early one
    expect(told).toEqual([]);
    jest.advanceTimersByTime(1); // 100 ms
    expect(told).toEqual(['early:undefined']);
    jest.advanceTimersByTime(59); // 99 ms for the late one
    expect(told).toEqual(['early:undefined']);
    jest.advanceTimersByTime(1);
    expect(told).toEqual(['early:undefined', 'late:undefined']);

    room.open('page'); // nobody left to tell
    expect(told).toHaveLength(2);
  });

  test('the outcome reaches those still waiting, not those already let go', () => {
    const room = new WaitingRoom<string>(100, fail);
    const told: string[] = [];
    room.join((outcome) => told.push(`early:${outcome}`));
    jest.advanceTimersByTime(50);
    room.join((outcome) => told.push(`late:${outcome}`));
    jest.advanceTimersByTime(50);
    room.open('page');
    expect(told).toEqual(['early:undefined', 'late:page']);
  });

  test('one timer for the whole room, and none left once the outcome is known', () => {
    const room = new WaitingRoom<string>(30_000, fail);
    for (let i = 0; i < 1000; i += 1) room.join(() => {});
    expect(jest.getTimerCount()).toBe(1);
    room.open('page');
    expect(jest.getTimerCount()).toBe(0);
  });

  test('a waiter whose answer throws is reported; the others are still told', () => {
    const errors: unknown[] = [];
    const room = new WaitingRoom<string>(1000, (error) => errors.push(error));
    const told: string[] = [];
    room.join(() => {
      throw new Error('broken waiter');
    });
    room.join((outcome) => told.push(String(outcome)));
    room.open('page');
    expect(told).toEqual(['page']);
    expect(errors).toEqual([new Error('broken waiter')]);
  });
});

function fail(error: unknown): never {
  throw error;
}
