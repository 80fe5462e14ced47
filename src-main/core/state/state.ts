import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../base/fsutil.js';
import { safeJson } from '../../base/safe-text.js';
import { ScheduleRecordSchema } from '../scheduler/record.js';

export const STATE_VERSION = 1;

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
  /** SHA-256 of the CA chain the certificate was issued under (the chain itself is stored with the credential). */
  caSha256: z.array(z.string()).optional(),
  /** Where its key is kept (tpm, software token, or a key file of an older version): for metrics and status. */
  keyProtection: z.enum(['tpm', 'software', 'file']).optional(),
  /** Whether the org verified a TPM attestation of its key, and why (not) (core/keys/attestation.ts). */
  keyAttestation: z.object({ attested: z.boolean(), reason: z.string().max(500) }).optional(),
  /** Its event 1000/1001 is in the event log (a run killed right after the import is repaired on reconciliation). */
  eventLogged: z.boolean().optional(),
});

/** A request the CA left PENDING: its key is kept and the next run asks about it instead of starting over. */
const PendingSchema = z.object({
  thumbprint: z.string(),
  backend: z.string(),
  /** Hash of the settings the request was made with (backends/types.ts); other settings start afresh. */
  requestIdentity: z.string(),
  since: z.string(),
  how: z.enum(['enrolled', 'renewed']),
  message: z.string(),
});

/** The CA rejected a request: the same request is not resent before `until` (no retry storm). */
const HoldSchema = z.object({
  backend: z.string(),
  requestIdentity: z.string(),
  code: z.string(),
  message: z.string(),
  remedy: z.string().optional(),
  at: z.string(),
  until: z.string(),
});

/** Server TLS issuer pins remembered (core/net/server-chain.ts): the org's published ones, or learnt on first use per host. */
export const RememberedPinsSchema = z.object({
  pins: z.array(z.string().regex(/^[A-Za-z0-9+/]{43}=$/)).min(1).max(40),
  source: z.enum(['published', 'first-use']),
  at: z.string(),
  hosts: z.array(z.string().max(300)).max(10).default([]),
});
export type RememberedPins = z.infer<typeof RememberedPinsSchema>;

/** A device ID as the state keeps it (a UUID): a certificate's CN that is not one never becomes the device's ID. */
export function isDeviceId(s: string | undefined): s is string {
  return z.uuid().safeParse(s).success;
}

export const StateSchema = z.object({
  version: z.literal(STATE_VERSION),
  deviceId: z.uuid(),
  createdAt: z.string(),
  current: CurrentSchema.optional(),
  pending: PendingSchema.optional(),
  hold: HoldSchema.optional(),
  /** `run --forceRenewal` was asked for and has not completed yet: the next pass completes it (survives a crash). */
  forceRequested: z.object({ at: z.string(), replaces: z.string().optional() }).optional(),
  lastRun: z
    .object({
      at: z.string(), task: z.string(), outcome: z.string(), code: z.string().optional(), message: z.string(),
      /** Correlation (fleet/failure.ts): the pass's trace ID, the last request's ID, the phase and the server's code. */
      correlationId: z.string().optional(),
      requestId: z.string().optional(),
      phase: z.string().optional(),
      serverCode: z.string().optional(),
      httpStatus: z.number().int().optional(),
    })
    .optional(),
  /**
   * The scheduler's record (scheduler/record.ts): first pass, last pass, backoff step, next retry, the chosen
   * renewal moment. Optional, so files written before it existed read unchanged (no version bump needed).
   */
  schedule: ScheduleRecordSchema.optional(),
  /** The server TLS issuer pins of the last pass (optional: older files read unchanged). */
  serverTls: RememberedPinsSchema.optional(),
});
export type AgentState = z.infer<typeof StateSchema>;
export type CurrentCertificate = z.infer<typeof CurrentSchema>;
export type PendingRequest = z.infer<typeof PendingSchema>;
export type RejectionHold = z.infer<typeof HoldSchema>;

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
    return { state: StateSchema.parse(JSON.parse(text)) };
  } catch {
    const aside = `${file}.corrupt-${Date.now()}`;
    fs.renameSync(file, aside);
    return { state: freshState(), recoveredFrom: aside };
  }
}

export function saveState(stateDir: string, state: AgentState): void {
  // Messages in the state (last run, hold, pending) may quote a server: they go through the output-safety layer.
  writeFileAtomic(stateFile(stateDir), JSON.stringify(safeJson(StateSchema.parse(state)), null, 2) + '\n');
}

function freshState(): AgentState {
  return { version: STATE_VERSION, deviceId: crypto.randomUUID(), createdAt: new Date().toISOString() };
}
