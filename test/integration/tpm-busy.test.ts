/**
 * A TPM token whose store another process is reading while the agent writes to it — the tray polling `status`
 * while the daemon renews. tpm2-pkcs11 keeps its objects in SQLite and fails a write with CKR_GENERAL_ERROR when a
 * reader holds the database (tpm2-pkcs11 #701). Real swtpm, tpm2-abrmd, tpm2-pkcs11; the reader is Python's
 * sqlite3 holding a read transaction on the token's own database.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAgentError } from '../../src-main/base/errors.js';
import { provisionTpmToken, TPM2_PKCS11_LIBRARIES, TPM_TOKEN_LABEL } from '../../src-main/platform/linux-keys.js';
import { Pkcs11Token } from '../../src-main/platform/pkcs11.js';
import { tempDir } from '../support/agent.js';
import { startSoftTpm, tpmUnavailable, type SoftTpm } from '../support/tpm.js';

const library = TPM2_PKCS11_LIBRARIES.find((l) => fs.existsSync(l));
const skipReason = tpmUnavailable() ?? (library ? undefined : 'skipped: tpm2-pkcs11 is not installed (apt install libtpm2-pkcs11-1)');
if (skipReason) console.log(`# tpm-busy ${skipReason}`);

/** A Python process holding a read transaction on the token database for `seconds`; resolves once it holds it. */
async function holdRead(db: string, seconds: number): Promise<ChildProcess> {
  const py = 'import sqlite3, sys, time\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute("BEGIN")\nc.execute("SELECT count(*) FROM tobjects").fetchall()\nprint("held", flush=True)\ntime.sleep(float(sys.argv[2]))\nc.execute("COMMIT")\n';
  const child = spawn('python3', ['-c', py, db, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    child.once('exit', (code) => reject(new Error(`the reader exited (${code}) before holding the database`)));
  });
  return child;
}

const exited = (c: ChildProcess) => (c.exitCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())));

describe('a TPM token store that another process is reading', { skip: skipReason }, () => {
  let tpm: SoftTpm;
  let token: Pkcs11Token;
  let db: string;

  before(async () => {
    tpm = await startSoftTpm();
    const store = tempDir('tpm-busy');
    // tpm2-pkcs11 reads its store and TCTI from the environment when it is loaded into this process.
    Object.assign(process.env, tpm.env, { TPM2_PKCS11_STORE: store });
    provisionTpmToken(store);
    db = path.join(store, 'tpm2_pkcs11.sqlite3');
    token = new Pkcs11Token({ library: library!, tokenLabel: TPM_TOKEN_LABEL, protection: 'tpm', tag: 'tpm' });
    token.open();
  });

  after(async () => {
    token?.close();
    await tpm?.stop();
  });

  test('a reader that lets go within a few seconds: the new key is made (the write is retried) and is in the token', async () => {
    const reader = await holdRead(db, 1.2);
    const key = token.generate('P-256', 'device-trust-agent busy');
    assert.ok(token.findKey(key.id), 'the key is in the token');
    await exited(reader);
  });

  test('a reader that never lets go: a local failure retried by the next pass (TOKEN_BUSY, exit 40) that says what happened; no key is left', async () => {
    const keysBefore = token.listOwnKeys('device-trust-agent').length;
    const reader = await holdRead(db, 30);
    try {
      assert.throws(() => token.generate('P-256', 'device-trust-agent stuck'), (e: unknown) => {
        assert.ok(isAgentError(e), String(e));
        assert.equal(e.code, 'TOKEN_BUSY');
        assert.equal(e.failure, 'local');
        assert.match(e.message, /another program was probably using it/);
        assert.match(e.remedy ?? '', /next pass tries again/);
        return true;
      });
    } finally {
      reader.kill();
      await exited(reader);
    }
    assert.equal(token.listOwnKeys('device-trust-agent').length, keysBefore, 'no half-made key in the token');
  });
});
