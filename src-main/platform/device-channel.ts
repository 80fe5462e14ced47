/**
 * The split between the device side and the user side (docs/PROTOCOL.md §13). The device side (root / service
 * account) alone holds the machine's Kerberos keytab; the user side asks it, over a local channel the operating
 * system authenticates, for a device token bound to the user's CSR key. This file is the wire contract (zod both
 * ways) and the user side's errors; the device side's handler is core/enrollment/device-service.ts, the transports are
 * platform/device-channel-unix.ts (Linux, macOS) and the data of device-channel-win32.ts / -darwin.ts.
 */
import { z } from 'zod';
import { AgentError, isAgentError, type FailureClass } from '../base/errors.js';

export const DEVICE_CHANNEL_VERSION = 1;
/** One request line and one answer line; nothing legitimate comes near this. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** The longest a user side may ask the device side to work on one request (and the default). */
export const MAX_REQUEST_DEADLINE_MS = 60_000;
/** Per uid: this many device tokens per window; a pass needs one. */
export const RATE_LIMIT = { requests: 6, windowMs: 10 * 60_000 } as const;

const thumbprint = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a base64url SHA-256 JWK thumbprint');
const text = (max: number) => z.string().min(1).max(max);

export const DeviceTokenRequestSchema = z.strictObject({
  v: z.literal(DEVICE_CHANNEL_VERSION),
  op: z.literal('device-token'),
  /** The org the user side enrolls with: the device side serves only its own configured org. */
  orgUrl: z.url({ protocol: /^https$/ }).max(2048),
  deviceId: z.guid(),
  /** RFC 7638 thumbprint of the user's CSR key: the token is bound to it (cnf.jkt), so it is useless for any other key. */
  keyThumbprint: thumbprint,
  /** How long the user side waits: the device side stops working on the request by then. */
  deadlineMs: z.number().int().min(1000).max(MAX_REQUEST_DEADLINE_MS),
});
export type DeviceTokenRequest = z.infer<typeof DeviceTokenRequestSchema>;

/** The knock: "make my endpoint". Harmless to anyone: it creates a directory only the named uid can enter. */
export const KnockRequestSchema = z.strictObject({ v: z.literal(DEVICE_CHANNEL_VERSION), op: z.literal('open'), uid: z.number().int().min(1).max(2 ** 31 - 2) });
export type KnockRequest = z.infer<typeof KnockRequestSchema>;

const failureClass = z.enum(['config', 'retry-later', 'rejected', 'bad-answer', 'local', 'internal']);
export const DeviceChannelRefusalSchema = z.strictObject({
  v: z.literal(DEVICE_CHANNEL_VERSION),
  ok: z.literal(false),
  failure: failureClass,
  code: z.string().regex(/^[A-Z0-9_]{1,64}$/),
  message: text(2000),
  remedy: text(2000).optional(),
  retryAfterMs: z.number().int().nonnegative().max(24 * 3600_000).optional(),
});
export const DeviceTokenAnswerSchema = z.union([
  z.strictObject({ v: z.literal(DEVICE_CHANNEL_VERSION), ok: z.literal(true), deviceToken: z.string().max(16 * 1024).regex(/^[\w-]+\.[\w-]+\.[\w-]+$/), iwaUrl: z.url().max(2048) }),
  DeviceChannelRefusalSchema,
]);
export type DeviceTokenAnswer = z.infer<typeof DeviceTokenAnswerSchema>;
export const KnockAnswerSchema = z.union([z.strictObject({ v: z.literal(DEVICE_CHANNEL_VERSION), ok: z.literal(true) }), DeviceChannelRefusalSchema]);
export type KnockAnswer = z.infer<typeof KnockAnswerSchema>;
export type DeviceChannelRefusal = z.infer<typeof DeviceChannelRefusalSchema>;

/** The user side's end of the channel (a platform adapter; absent where the process holds the machine credentials). */
export interface DeviceChannel {
  /** Where this OS's device side listens, for messages. */
  readonly description: string;
  /** How to start the device side on this OS, for messages. */
  readonly startCommand: string;
  /** True when this process itself legitimately holds the machine credentials (root, or the keytab's owner). */
  holdsMachineCredentials(keytab: string): boolean;
  /** One request, one answer, within `deadlineMs`; failures are AgentErrors (deviceServiceDown and friends). */
  deviceToken(req: Omit<DeviceTokenRequest, 'v' | 'op'>): Promise<{ deviceToken: string; iwaUrl: string }>;
}

export const DEVICE_SERVICE_DOWN = 'DEVICE_SERVICE_DOWN';

/** The device side is not running, not installed, or its channel is missing: the user side says exactly that. */
export function deviceServiceDown(where: string, startCommand: string, why: string): AgentError {
  return new AgentError('retry-later', DEVICE_SERVICE_DOWN,
    `The device service is not running (${why}; its channel is ${where}). It alone may use this machine's credentials, so the certificate cannot be requested without it. Nothing was changed.`,
    `Start it (as an administrator): ${startCommand}. The agent tries again later on its own.`);
}

/** An answer from the device side that is not the contract (a stale version, another program on the path). */
export function deviceServiceBadAnswer(where: string): AgentError {
  return new AgentError('bad-answer', 'DEVICE_SERVICE_BAD_ANSWER', `The device service at ${where} answered something that is not the device-channel protocol; it was refused and nothing was changed.`,
    'Reinstall the agent so that the device service and the user side are the same version, then run again.');
}

export function deviceServiceTimeout(where: string, ms: number): AgentError {
  return new AgentError('retry-later', 'DEVICE_SERVICE_TIMEOUT', `The device service at ${where} did not answer within ${ms} ms; the request was abandoned and nothing was changed.`,
    'The agent tries again later. If it persists, check the device service (journalctl -u device-trust-agent-device.service, or the OS equivalent).');
}

/** A refusal from the device side becomes the user side's error, with the device side's class and words. */
export function fromRefusal(r: DeviceChannelRefusal): AgentError {
  const e = new AgentError(r.failure as FailureClass, r.code, `The device service: ${r.message}`, r.remedy);
  if (r.retryAfterMs !== undefined) e.retryAfterMs = r.retryAfterMs;
  return e;
}

export function toRefusal(e: unknown): DeviceChannelRefusal {
  const err = isAgentError(e) ? e : new AgentError('internal', 'INTERNAL', `Unexpected failure in the device service: ${(e as Error)?.message ?? String(e)}`);
  return {
    v: DEVICE_CHANNEL_VERSION, ok: false, failure: err.failure, code: /^[A-Z0-9_]{1,64}$/.test(err.code) ? err.code : 'INTERNAL',
    message: err.message.slice(0, 2000) || err.code, ...(err.remedy ? { remedy: err.remedy.slice(0, 2000) } : {}),
    ...(err.retryAfterMs !== undefined ? { retryAfterMs: Math.min(Math.round(err.retryAfterMs), 24 * 3600_000) } : {}),
  };
}

