/** Milliseconds that only go forward, for local deadlines and timeouts. */
export interface Clock {
  now(): number;
}

/**
 * `performance.now()`: a wall-clock step (NTP, a VM resumed, an operator)
 * neither expires every lease at once nor times out every range in flight.
 */
export const monotonicClock: Clock = { now: () => performance.now() };
