/**
 * The one contract between the main process and the dashboard: every channel, its request and answer
 * schema, and the name the preload gives it on `window.deviceTrust`. Main validates every request against
 * it (src-main/ipc/guard.ts) and strips every answer to it, so nothing outside these schemas (a private key,
 * a token, a PEM) can cross; the renderer imports the same file for its types.
 *
 * Browser-safe: imports zod only (the renderer bundles this file).
 */
import { z } from 'zod';

const iso = z.string().max(40);
const text = (max = 2000) => z.string().max(max);

// ---- status ------------------------------------------------------------------------------------------

/** What the tray and the header show, at a glance. */
export const TrustStateSchema = z.enum(['trusted', 'renewing', 'attention', 'not-trusted']);
export type TrustState = z.infer<typeof TrustStateSchema>;

export const DeviceStateSchema = z.enum(['NOT_CONFIGURED', 'NOT_ENROLLED', 'ENROLLED', 'RENEWAL_DUE', 'EXPIRED', 'KEY_MISSING', 'REVOKED', 'PENDING', 'REJECTED', 'CLOCK_WRONG']);

export const ActivitySchema = z.enum(['renew', 'forceRenewal', 'diagnostics', 'scheduled']);
export type Activity = z.infer<typeof ActivitySchema>;

export const CertificateViewSchema = z.object({
  subject: text(1000),
  subjectCN: text(300),
  issuer: text(1000),
  issuerCN: text(300),
  serialNumber: text(200),
  notBefore: iso,
  notAfter: iso,
  sha256: text(100),
  /** Whole days until notAfter (negative once expired). */
  daysToExpiry: z.number().int(),
  store: text(500),
});
export type CertificateView = z.infer<typeof CertificateViewSchema>;

export const StatusViewSchema = z.object({
  trust: TrustStateSchema,
  /** One sentence answering "is this device trusted?". */
  headline: text(300),
  state: DeviceStateSchema,
  summary: text(),
  orgUrl: text(500).optional(),
  deviceId: text(200),
  deviceName: text(300),
  certificate: CertificateViewSchema.optional(),
  certificatesInStore: z.number().int().nonnegative(),
  /** How the device key is protected (tpm / software token / legacy key file) and why. */
  keyProtection: z.object({ protection: z.enum(['tpm', 'software', 'file']), reason: text(300),
    /** The org verified a TPM attestation of the key (docs/PROTOCOL.md §11), and why (not). */
    attested: z.boolean().optional(), attestation: text(300).optional() }).optional(),
  /** When renewal is planned (start of the renewal window, or the scheduler's chosen moment). */
  plannedRenewal: iso.optional(),
  lastRun: z.object({ at: iso, task: text(50), outcome: text(50), code: text(100).optional(), message: text() }).optional(),
  /** Work in progress in the main process, if any (one at a time). */
  busy: ActivitySchema.nullable(),
  nextRun: z.object({ at: iso, why: text(300) }).optional(),
  /** `status` as a doctor (core/fleet/doctor.ts): the named tests, each PASS / FAIL / SKIPPED with evidence. */
  tests: z.array(z.object({ name: text(60), title: text(120), result: z.enum(['PASS', 'FAIL', 'SKIPPED']), evidence: text(1000) })).max(32).optional(),
  /** The last failed pass: its phase, codes and the correlation ID to find it in the server's log. */
  lastFailure: z.object({
    at: iso, task: text(50), phase: text(50).optional(), clientCode: text(100).optional(), serverCode: text(100).optional(),
    httpStatus: z.number().int().optional(), correlationId: text(100).optional(), requestId: text(200).optional(), message: text(),
  }).optional(),
});
export type StatusView = z.infer<typeof StatusViewSchema>;

// ---- running the task ----------------------------------------------------------------------------------

export const RunSummarySchema = z.object({
  outcome: z.enum(['enrolled', 'renewed', 'nothing-to-do', 'configured']),
  message: text(),
  serialNumber: text(200).optional(),
  notAfter: iso.optional(),
  warnings: z.array(text()).max(50),
});
export type RunSummary = z.infer<typeof RunSummarySchema>;

/** Force renewal deletes the current certificate: the request must say it was confirmed by the user. */
export const ForceRenewalRequestSchema = z.strictObject({ confirmed: z.literal(true) });

// ---- diagnostics ---------------------------------------------------------------------------------------

export const HealthSchema = z.enum(['ONLINE', 'DEGRADED', 'OFFLINE', 'UNKNOWN']);
export type Health = z.infer<typeof HealthSchema>;

export const TargetKindSchema = z.enum(['org', 'iwa', 'mtls', 'crl', 'kdc', 'dc', 'kerberos', 'clock', 'gateway', 'agent-pools', 'proxy']);
export type TargetKind = z.infer<typeof TargetKindSchema>;

/** One stage of a check (DNS, connect+TLS, HTTP, answer…); ok null means not run. */
export const StageSchema = z.object({ name: text(100), ok: z.boolean().nullable(), ms: z.number().nonnegative().optional(), detail: text() });
export type Stage = z.infer<typeof StageSchema>;

export const HistoryPointSchema = z.object({ at: iso, ok: z.boolean(), ms: z.number().nonnegative().optional() });
export type HistoryPoint = z.infer<typeof HistoryPointSchema>;

export const TargetReportSchema = z.object({
  id: text(100),
  kind: TargetKindSchema,
  name: text(200),
  url: text(1000).optional(),
  health: HealthSchema,
  /** Why the health model says so: the last transition, e.g. "3 consecutive failed check(s)". */
  healthReason: text().optional(),
  healthSince: iso.optional(),
  /** One line: what the check found. */
  summary: text(),
  /** What this target is for and, for IWA, what the org's failover mode means. */
  explanation: text().optional(),
  lastCheck: iso.optional(),
  latencyMs: z.number().nonnegative().optional(),
  stages: z.array(StageSchema).max(50),
  history: z.array(HistoryPointSchema).max(100),
});
export type TargetReport = z.infer<typeof TargetReportSchema>;

export const SeveritySchema = z.enum(['critical', 'warning', 'info']);
export type Severity = z.infer<typeof SeveritySchema>;

export const FindingSchema = z.object({
  id: text(100),
  severity: SeveritySchema,
  title: text(300),
  cause: text(),
  remedy: text(),
  evidence: text().optional(),
  targetId: text(100).optional(),
});
export type Finding = z.infer<typeof FindingSchema>;

export const DiagnosticsReportSchema = z.object({
  at: iso,
  durationMs: z.number().nonnegative(),
  targets: z.array(TargetReportSchema).max(100),
  findings: z.array(FindingSchema).max(100),
});
export type DiagnosticsReport = z.infer<typeof DiagnosticsReportSchema>;

// ---- event log -----------------------------------------------------------------------------------------

export const LevelSchema = z.enum(['info', 'warning', 'error']);
export type Level = z.infer<typeof LevelSchema>;

export const EventQuerySchema = z.strictObject({
  levels: z.array(LevelSchema).max(3).optional(),
  ids: z.array(z.number().int().min(0).max(99999)).max(100).optional(),
  since: z.iso.datetime().optional(),
  until: z.iso.datetime().optional(),
  text: z.string().max(200).optional(),
  limit: z.number().int().min(1).max(20000).optional(),
});
export type EventQuery = z.infer<typeof EventQuerySchema>;

export const EventViewSchema = z.object({
  time: iso,
  id: z.number().int(),
  level: LevelSchema,
  title: text(300),
  message: text(8000),
  task: text(50).optional(),
});
export type EventView = z.infer<typeof EventViewSchema>;

export const EventPageSchema = z.object({
  /** Newest first. */
  events: z.array(EventViewSchema).max(20000),
  matched: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  catalogue: z.array(z.object({ id: z.number().int(), level: LevelSchema, title: text(300) })).max(500),
});
export type EventPage = z.infer<typeof EventPageSchema>;

export const ExportRequestSchema = z.strictObject({ query: EventQuerySchema, format: z.enum(['jsonl', 'csv']) });
export const ExportResultSchema = z.object({ savedTo: text(4096).nullable(), count: z.number().int().nonnegative() });
export type ExportResult = z.infer<typeof ExportResultSchema>;

// ---- settings: the org admin API token ------------------------------------------------------------------

/** Whether a token is stored (never the token itself), where, and why the store cannot be used if it cannot. */
export const AdminTokenStatusSchema = z.object({
  org: text(300).nullable(),
  stored: z.boolean(),
  store: text(300),
  /** The store refuses secrets here (no keyring: only a plain-text fallback would exist): what to do instead. */
  problem: text().optional(),
});
export type AdminTokenStatus = z.infer<typeof AdminTokenStatusSchema>;
/** The token travels renderer → main once, in this request; no answer ever carries it back. */
export const AdminTokenSetSchema = z.strictObject({ token: z.string().min(1).max(4096) });
export const AdminTokenCheckSchema = z.object({ ok: z.boolean(), message: text(), code: text(100).optional(), pools: z.number().int().nonnegative().optional() });
export type AdminTokenCheck = z.infer<typeof AdminTokenCheckSchema>;

// ---- main → renderer -----------------------------------------------------------------------------------

export const ViewSchema = z.enum(['overview', 'events', 'settings']);
export type View = z.infer<typeof ViewSchema>;

export const UiEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('progress'), activity: ActivitySchema, phase: z.enum(['start', 'step', 'done', 'failed']), step: text(300).optional(), message: text().optional() }),
  z.object({ type: z.literal('status-changed') }),
  /** A diagnostics run finished (also the periodic one while the dashboard is open): fetch it. */
  z.object({ type: z.literal('diagnostics-updated') }),
  z.object({ type: z.literal('navigate'), view: ViewSchema }),
  /** A launch with --forceRenewal: the dashboard asks the user; nothing runs without that confirmation. */
  z.object({ type: z.literal('confirm-force-renewal') }),
]);
export type UiEvent = z.infer<typeof UiEventSchema>;

// ---- device posture ----------------------------------------------------------------------------------------

export const PostureStatusSchema = z.enum(['PASS', 'FAIL', 'UNKNOWN']);
/** One posture check as the Posture card shows it: what was found, why it could not decide, how to fix it. */
export const PostureCheckViewSchema = z.object({
  check: text(80),
  title: text(200),
  status: PostureStatusSchema,
  summary: text(1000),
  why: text(1000).optional(),
  remedy: text(1000).optional(),
  evidence: z.array(text(1000)).max(20),
  /** `device`: answered by the device task (root/SYSTEM). */
  source: z.enum(['user', 'device']).optional(),
});
export const PostureViewSchema = z.object({
  at: iso,
  results: z.array(PostureCheckViewSchema).max(60),
  /** The org's device-assurance verdict on the last report. */
  compliance: z.object({
    status: z.enum(['compliant', 'non-compliant', 'not-evaluated']),
    mode: z.enum(['off', 'report-only', 'grace', 'enforce']),
    failing: z.array(z.object({ check: text(100), reason: text(500) })).max(50),
    deadline: iso.optional(),
    message: text(500).optional(),
  }).optional(),
  report: z.object({ at: iso, ok: z.boolean(), error: text(500).optional() }).optional(),
});
export type PostureView = z.infer<typeof PostureViewSchema>;
export type PostureCheckView = z.infer<typeof PostureCheckViewSchema>;

// ---- the channels ----------------------------------------------------------------------------------------

const Empty = z.strictObject({});

/** Channel name → preload method name, request schema, answer schema. */
export const CHANNELS = {
  'status:get': { method: 'getStatus', request: Empty, response: StatusViewSchema },
  'task:renew': { method: 'renewNow', request: Empty, response: RunSummarySchema },
  'task:force-renewal': { method: 'forceRenewal', request: ForceRenewalRequestSchema, response: RunSummarySchema },
  'diagnostics:last': { method: 'getDiagnostics', request: Empty, response: DiagnosticsReportSchema.nullable() },
  'diagnostics:run': { method: 'runDiagnostics', request: Empty, response: DiagnosticsReportSchema },
  'events:query': { method: 'queryEvents', request: EventQuerySchema, response: EventPageSchema },
  'events:export': { method: 'exportEvents', request: ExportRequestSchema, response: ExportResultSchema },
  'admin-token:status': { method: 'getAdminToken', request: Empty, response: AdminTokenStatusSchema },
  'admin-token:set': { method: 'setAdminToken', request: AdminTokenSetSchema, response: AdminTokenStatusSchema },
  'admin-token:test': { method: 'testAdminToken', request: Empty, response: AdminTokenCheckSchema },
  'admin-token:remove': { method: 'removeAdminToken', request: Empty, response: z.object({ removed: z.boolean() }) },
  /** The dashboard is listening: main hands over what it asked for before (open the event log, confirm…). */
  /** The last posture pass (null before the first), and a new pass on request. */
  'posture:get': { method: 'getPosture', request: Empty, response: PostureViewSchema.nullable() },
  'posture:run': { method: 'runPosture', request: Empty, response: PostureViewSchema },
  'ui:ready': { method: 'ready', request: Empty, response: z.object({ pending: z.array(UiEventSchema).max(20) }) },
} as const;

export type Channel = keyof typeof CHANNELS;
export type Request<C extends Channel> = z.infer<(typeof CHANNELS)[C]['request']>;
export type Response<C extends Channel> = z.infer<(typeof CHANNELS)[C]['response']>;

/** The main → renderer push channel (UiEvent). */
export const UI_EVENT_CHANNEL = 'ui:event';

export const IpcErrorSchema = z.object({ code: text(100), message: text(), remedy: text().optional() });
export type IpcError = z.infer<typeof IpcErrorSchema>;
/** Every answer is an envelope: AgentErrors keep their code and remedy across the boundary. */
export type IpcResult<T> = { ok: true; value: T } | { ok: false; error: IpcError };

type MethodOf<C extends Channel> = (typeof CHANNELS)[C]['method'];
type ChannelOfMethod<M> = { [C in Channel]: MethodOf<C> extends M ? C : never }[Channel];
type MethodName = MethodOf<Channel>;

/** `window.deviceTrust`: named functions only; each takes its request object and returns the envelope. */
export type DeviceTrustApi = {
  [M in MethodName]: (request: Request<ChannelOfMethod<M>>) => Promise<IpcResult<Response<ChannelOfMethod<M>>>>;
} & {
  /** Subscribes to main → renderer events; returns the unsubscribe function. */
  onEvent(listener: (event: UiEvent) => void): () => void;
};

/** Method name → channel, in a form both the preload and the test bridge can use. */
export const API_METHODS: { method: MethodName; channel: Channel }[] = (Object.keys(CHANNELS) as Channel[]).map((channel) => ({ method: CHANNELS[channel].method, channel }));

/**
 * Builds `window.deviceTrust` from the contract, over whatever carries the calls (ipcRenderer in the
 * preload; a Playwright binding in the Chromium tests). Every function is generated: none is hand-written.
 */
export function buildApi(invoke: (channel: Channel, request: unknown) => Promise<unknown>, subscribe: (listener: (event: unknown) => void) => () => void): DeviceTrustApi {
  const api: Record<string, unknown> = {};
  for (const { method, channel } of API_METHODS) api[method] = (request: unknown) => invoke(channel, request ?? {});
  api.onEvent = (listener: (event: UiEvent) => void) =>
    subscribe((raw) => {
      const parsed = UiEventSchema.safeParse(raw);
      if (parsed.success) listener(parsed.data);
    });
  return Object.freeze(api) as DeviceTrustApi;
}
