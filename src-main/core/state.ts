import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './fsutil.js';
import { ScheduleRecordSchema } from './scheduler/record.js';

/** Version 2 added `schedule`; a version-1 file is read and upgraded on the next write. */
export const STATE_VERSION = 2;

const CurrentSchema = z.object({
  thumbprint: z.string(),
  serialNumber: z.string(),
  storeId: z.string(),
  subject: z.string(),
  issuer: z.string(),
  notBefore: z.string(),
  notAfter: z.string(),
  sha256: z.string(),
  enrolledAt: z.string(),
  /** Start of the renewal window (from the org's settings at issuance). */
  renewFrom: z.string().optional(),
  how: z.enum(['enrolled', 'renewed']),
});

export const StateSchema = z.object({
  version: z.literal(STATE_VERSION),
  deviceId: z.uuid(),
  createdAt: z.string(),
  current: CurrentSchema.optional(),
  lastRun: z
    .object({ at: z.string(), task: z.string(), outcome: z.string(), code: z.string().optional(), message: z.string() })
    .optional(),
  /** The scheduler's record: next deadlines, backoff step, the chosen renewal moment (scheduler/record.ts). */
  schedule: ScheduleRecordSchema.optional(),
});
export type AgentState = z.infer<typeof StateSchema>;
export type CurrentCertificate = z.infer<typeof CurrentSchema>;

export interface LoadedState {
  state: AgentState;
  /** Set when the file was unreadable and was moved aside: the caller reports it. */
  recoveredFrom?: string;
}

export function stateFile(stateDir: string): string {
  return path.join(stateDir, 'state.json');
}

/** Reads the state; a corrupt file is moved aside (never deleted) and a fresh state takes its place. */
export function loadState(stateDir: string): LoadedState {
  const file = stateFile(stateDir);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { state: freshState() };
  }
  try {
    return { state: StateSchema.parse(migrate(JSON.parse(text))) };
  } catch {
    const aside = `${file}.corrupt-${Date.now()}`;
    fs.renameSync(file, aside);
    return { state: freshState(), recoveredFrom: aside };
  }
}

export function saveState(stateDir: string, state: AgentState): void {
  writeFileAtomic(stateFile(stateDir), JSON.stringify(StateSchema.parse(state), null, 2) + '\n');
}

/** Older versions are upgraded in memory; a newer or unknown version is refused like a corrupt file. */
function migrate(raw: unknown): unknown {
  if (raw && typeof raw === 'object' && (raw as { version?: unknown }).version === 1) return { ...raw, version: 2 };
  return raw;
}

function freshState(): AgentState {
  return { version: STATE_VERSION, deviceId: crypto.randomUUID(), createdAt: new Date().toISOString() };
}
