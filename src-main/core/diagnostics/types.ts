import { z } from 'zod';

/**
 * The `diagnose --json` document. Versioned: fields are only added within a version; a removal or a change of
 * meaning bumps DIAGNOSE_SCHEMA_VERSION. docs/DIAGNOSTICS.md describes every field.
 */
export const DIAGNOSE_SCHEMA = 'device-trust-agent/diagnose';
export const DIAGNOSE_SCHEMA_VERSION = 1;

export const StageNameSchema = z.enum(['dns', 'tcp', 'tls', 'http', 'auth', 'kerberos', 'ntp', 'local']);
export type StageName = z.infer<typeof StageNameSchema>;

export const StageSchema = z.object({
  name: StageNameSchema,
  /** What exactly was done ("TCP 127.0.0.1:88", "GET /IWA/authenticated.aspx"). */
  label: z.string(),
  status: z.enum(['ok', 'fail', 'skipped', 'timeout']),
  ms: z.number(),
  detail: z.string(),
});
export type Stage = z.infer<typeof StageSchema>;

export const ProbeStatusSchema = z.enum(['ok', 'fail', 'skipped', 'timeout']);
export type ProbeStatus = z.infer<typeof ProbeStatusSchema>;

export const ProbeKindSchema = z.enum([
  'org', 'iwa', 'mtls', 'crl', 'kdc', 'dc', 'kerberos', 'clock', 'gateway', 'agent-pools', 'certificate', 'tpm',
]);
export type ProbeKind = z.infer<typeof ProbeKindSchema>;

export const ProbeResultSchema = z.object({
  /** Stable within a run and across runs for the same target: `org`, `iwa:primary`, `iwa:backup:1`, `kdc:127.0.0.1:88`… */
  id: z.string(),
  kind: ProbeKindSchema,
  /** URL or host:port probed. */
  target: z.string(),
  status: ProbeStatusSchema,
  ms: z.number(),
  stages: z.array(StageSchema),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  /** Probe-specific observations the findings use (documented per kind in docs/DIAGNOSTICS.md). */
  facts: z.record(z.string(), z.unknown()),
});
export type ProbeResult = z.infer<typeof ProbeResultSchema>;

export const SeveritySchema = z.enum(['info', 'warning', 'error']);
export type Severity = z.infer<typeof SeveritySchema>;
export const SEVERITY_RANK: Record<Severity | 'ok', number> = { ok: 0, info: 1, warning: 2, error: 3 };

export const FindingSchema = z.object({
  /** Stable code, listed in the findings catalogue (docs/OPERATORS.md "Diagnostics"). */
  code: z.string(),
  severity: SeveritySchema,
  title: z.string(),
  evidence: z.array(z.string()),
  cause: z.string(),
  remedy: z.string(),
  /** Probe IDs the evidence comes from. */
  probes: z.array(z.string()),
});
export type Finding = z.infer<typeof FindingSchema>;

export const AgentSchema = z.object({
  id: z.string(),
  name: z.string(),
  type: z.string().optional(),
  operationalStatus: z.string(),
  /** Epoch milliseconds of the agent's last connection to the org. */
  lastConnection: z.number().nullable().optional(),
  version: z.string().nullable().optional(),
  updateStatus: z.string().nullable().optional(),
});
export const AgentPoolSchema = z.object({
  id: z.string(),
  name: z.string(),
  type: z.string(),
  operationalStatus: z.string(),
  agents: z.array(AgentSchema).default([]),
});
export const AgentPoolsAnswerSchema = z.array(AgentPoolSchema).max(500);
export type AgentPool = z.infer<typeof AgentPoolSchema>;

export const HealthStateSchema = z.enum(['UNKNOWN', 'ONLINE', 'DEGRADED', 'OFFLINE']);
export type HealthState = z.infer<typeof HealthStateSchema>;

export const HealthSnapshotSchema = z.object({
  target: z.string(),
  state: HealthStateSchema,
  since: z.string().nullable(),
  consecutiveFailures: z.number(),
  consecutiveSuccesses: z.number(),
  /** Set while a target that was OFFLINE is cooling down before it is declared ONLINE again. */
  recoveringUntil: z.string().nullable(),
  transitions: z.array(z.object({ at: z.string(), from: HealthStateSchema, to: HealthStateSchema, reason: z.string() })),
});
export type HealthSnapshot = z.infer<typeof HealthSnapshotSchema>;

export const DiagnoseReportSchema = z.object({
  schema: z.literal(DIAGNOSE_SCHEMA),
  version: z.literal(DIAGNOSE_SCHEMA_VERSION),
  generatedAt: z.string(),
  durationMs: z.number(),
  orgUrl: z.string().nullable(),
  /** From the org's discovery answer (or the last one cached when the org did not answer). */
  org: z
    .object({
      orgName: z.string(),
      readOnly: z.boolean(),
      failoverMode: z.string(),
      iwa: z.array(z.string()),
      fromCache: z.boolean(),
    })
    .nullable(),
  probes: z.array(ProbeResultSchema),
  agentPools: z.array(AgentPoolSchema).nullable(),
  findings: z.array(FindingSchema),
  /** Present in `--watch` output: the health model's view of every target. */
  health: z.array(HealthSnapshotSchema).optional(),
  worst: z.enum(['ok', 'info', 'warning', 'error']),
  exitCode: z.number(),
});
export type DiagnoseReport = z.infer<typeof DiagnoseReportSchema>;
