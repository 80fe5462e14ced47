import { z } from 'zod';

/** What a pass was started by. Timed reasons come from the persisted deadlines; the rest are events. */
export const TRIGGERS = ['install', 'logon', 'first-run', 'daily', 'renewal', 'retry', 'expiry', 'network', 'config', 'manual', 'timer', 'clock', 'recheck'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const PASS_OUTCOMES = ['enrolled', 'renewed', 'nothing-to-do', 'configured', 'failed'] as const;

const FailureClassSchema = z.enum(['config', 'retry-later', 'rejected', 'bad-answer', 'local', 'internal']);

/** The renewal moment chosen for one certificate: fixed once, so restarts never re-roll it. */
export const RenewalChoiceSchema = z.object({
  sha256: z.string(),
  windowStart: z.string(),
  notAfter: z.string(),
  renewAt: z.string(),
});
export type RenewalChoice = z.infer<typeof RenewalChoiceSchema>;

/** The scheduler's part of state.json: everything it needs to pick the next deadline after a restart. */
export const ScheduleRecordSchema = z.object({
  /** Time of the first pass: daily passes fall on this time of day, every 24 hours from it. */
  anchor: z.string().optional(),
  lastPass: z
    .object({
      at: z.string(),
      trigger: z.enum(TRIGGERS),
      outcome: z.enum(PASS_OUTCOMES),
      failure: FailureClassSchema.optional(),
      code: z.string().optional(),
      message: z.string(),
      remedy: z.string().optional(),
    })
    .optional(),
  lastSuccessAt: z.string().optional(),
  /** Consecutive failed passes (the backoff step). */
  failures: z.number().int().nonnegative(),
  /** Next retry, drawn once (with its jitter) when the failure was recorded. */
  retryAt: z.string().optional(),
  renewal: RenewalChoiceSchema.optional(),
  /** For a stuck state: the configuration as it was, so that a change to it is worth a new pass. */
  stuckConfig: z.string().optional(),
  /** A clock anomaly was found (a persisted time in the future): a check pass is due from `at` (scheduler/anomaly.ts). */
  clockCheck: z.object({ at: z.string(), detail: z.string() }).optional(),
  /** The last named state reported to the event log (state changes are logged once). */
  state: z.string().optional(),
});
export type ScheduleRecord = z.infer<typeof ScheduleRecordSchema>;

export function emptyRecord(): ScheduleRecord {
  return { failures: 0 };
}
