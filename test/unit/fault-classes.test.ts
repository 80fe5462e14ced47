/**
 * One fault, one exit code (issue 24): the table in base/errors.ts decides the class wherever a fault is raised,
 * the scheduler's named state follows it, diagnose's exit code follows it, and the README's table says the same.
 * (test/integration/truthful-status.test.ts runs the real commands per fault.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { AgentError, ExitCode, FAULT_CLASSES, exitCodeFor, exitCodeForClass, worstExitCode } from '../../src-main/base/errors.js';
import { diagnoseExitCode } from '../../src-main/core/diagnostics/run-diagnostics.js';
import { stateForFailure } from '../../src-main/core/scheduler/states.js';
import { REPO } from '../support/agent.js';

test('a fault with a written-down class has it wherever it is raised: a proxy refusing our credentials is configuration, not a rejection', () => {
  const e = new AgentError('rejected', 'PROXY_AUTH_FAILED', 'The proxy refused this device\'s credentials.');
  assert.equal(e.failure, 'config');
  assert.equal(exitCodeFor(e), ExitCode.CONFIG);
  assert.equal(stateForFailure(e.failure, e.code), 'NEED_CONFIGURATION');
  assert.equal(exitCodeFor(new AgentError('config', 'PAC_NO_ANSWER', 'x')), ExitCode.RETRY_LATER);
  // A code not in the table keeps the class it was raised with.
  assert.equal(new AgentError('rejected', 'USER_NOT_ACTIVE', 'x').failure, 'rejected');
});

test('several faults: the one a person must act on first decides (78, then 30, 40, 20)', () => {
  assert.equal(worstExitCode([ExitCode.NOTHING_TO_DO, ExitCode.NEEDS_ATTENTION]), ExitCode.NEEDS_ATTENTION);
  assert.equal(worstExitCode([ExitCode.RETRY_LATER, ExitCode.CONFIG, ExitCode.NEEDS_ATTENTION]), ExitCode.CONFIG);
  assert.equal(worstExitCode([ExitCode.OK, ExitCode.NOTHING_TO_DO]), ExitCode.NOTHING_TO_DO);
  assert.equal(worstExitCode([]), ExitCode.OK);
});

test('diagnose exits with the class of the fault behind an error finding, else 30; warnings 20', () => {
  const probe = (id: string, code: string) => ({ id, kind: 'org', target: 't', status: 'fail', ms: 1, stages: [], error: { code, message: 'm' }, facts: {} });
  const finding = (code: string, severity: 'error' | 'warning', probes: string[]) => ({ code, severity, title: 't', evidence: [], cause: '', remedy: '', probes });
  assert.equal(diagnoseExitCode([finding('PAC_FAILED', 'error', ['org'])] as never, [probe('org', 'PAC_TIMEOUT')] as never), ExitCode.CONFIG);
  assert.equal(diagnoseExitCode([finding('PROXY_FAILED', 'error', ['org'])] as never, [probe('org', 'PROXY_AUTH_FAILED')] as never), ExitCode.CONFIG);
  assert.equal(diagnoseExitCode([finding('TLS_INTERCEPTION', 'error', [])] as never, []), ExitCode.NEEDS_ATTENTION);
  assert.equal(diagnoseExitCode([finding('PROXY_NO_ANSWER', 'error', [])] as never, []), ExitCode.RETRY_LATER);
  assert.equal(diagnoseExitCode([finding('CERT_REVOKED', 'error', [])] as never, []), ExitCode.NEEDS_ATTENTION);
  assert.equal(diagnoseExitCode([finding('KDC_UNREACHABLE', 'warning', [])] as never, []), ExitCode.RETRY_LATER);
});

test('the README\'s exit-code table gives, for every code it lists, the exit code the table in base/errors.ts decides', () => {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('| fault | codes | `run` |');
  assert.ok(start > 0, 'the README has the fault table');
  const after = readme.slice(start).split('\n').slice(2);
  const rows = after.slice(0, after.findIndex((l) => !l.startsWith('|')));
  const listed = new Set<string>();
  for (const row of rows) {
    const cells = row.split('|').slice(1, -1).map((c) => c.trim());
    const codes = [...cells[1]!.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]!);
    const exits = cells.slice(2).map((c) => /^\d+/.exec(c)?.[0]).filter((x): x is string => x !== undefined).map(Number);
    assert.ok(exits.length >= 2 && exits.every((x) => x === exits[0]), `one exit code per fault in the README: ${row}`);
    for (const code of codes) {
      listed.add(code);
      const cls = FAULT_CLASSES[code];
      assert.ok(cls, `${code} (README) is in FAULT_CLASSES`);
      assert.equal(exitCodeForClass(cls), exits[0], `${code}: README says ${exits[0]}`);
    }
  }
  for (const code of Object.keys(FAULT_CLASSES)) assert.ok(listed.has(code), `${code} (FAULT_CLASSES) is listed in the README`);
});
