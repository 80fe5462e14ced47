import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './agent.js';
import { TPM2_PKCS11_LIBRARIES } from '../../src-main/platform/linux-keys.js';
import { hasCommand } from './host.js';
import { accepts, freePort } from './net.js';
import { waitFor } from './wait.js';

/**
 * A real TPM 2.0 for one test file: swtpm on ephemeral loopback ports, a private D-Bus session bus and
 * tpm2-abrmd as its resource manager (tpm2-pkcs11 needs one: the bare simulator runs out of object slots).
 * `env` is what the agent and Chromium need to reach it.
 */
export interface SoftTpm {
  dir: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

const TOOLS = ['swtpm', 'swtpm_setup', 'tpm2-abrmd', 'dbus-daemon'];

export function tpmUnavailable(): string | undefined {
  const missing = TOOLS.filter((t) => !hasCommand(t));
  if (!TPM2_PKCS11_LIBRARIES.some((l) => fs.existsSync(l))) missing.push('libtpm2-pkcs11-1');
  return missing.length ? `skipped: ${missing.join(', ')} not installed (apt install swtpm swtpm-tools tpm2-abrmd dbus libtpm2-pkcs11-1)` : undefined;
}

async function canBind(port: number): Promise<boolean> {
  const s = net.createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function adjacentFreePorts(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p < 65535 && (await canBind(p + 1))) return p;
  }
  throw new Error('no two adjacent free loopback ports');
}

export async function startSoftTpm(opts: { ekCa?: string } = {}): Promise<SoftTpm> {
  const dir = tempDir('tpm');
  const state = path.join(dir, 'state');
  fs.mkdirSync(state, { recursive: true });
  const conf = opts.ekCa ? writeLocalCaConfig(dir, opts.ekCa) : writeSetupConfig(dir);
  execFileSync('swtpm_setup', ['--tpm2', '--tpmstate', state, '--overwrite', ...(opts.ekCa ? ['--create-ek-cert'] : []), '--config', conf], { stdio: 'pipe' });
  const children: ChildProcess[] = [];
  // The swtpm TCTI reaches the control channel on port+1.
  const port = await adjacentFreePorts();
  const ctrl = port + 1;
  const swtpm = spawn('swtpm', ['socket', '--tpm2', '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${ctrl},bindaddr=127.0.0.1`,
    '--tpmstate', `dir=${state}`, '--flags', 'not-need-init,startup-clear'], { stdio: 'ignore' });
  children.push(swtpm);
  await waitFor(`swtpm to listen on ${port}`, () => accepts(port), 15_000, 100);
  const sock = path.join(dir, 'dbus.sock');
  const dbus = spawn('dbus-daemon', ['--session', '--nofork', `--address=unix:path=${sock}`], { stdio: 'ignore' });
  children.push(dbus);
  await waitFor('the D-Bus socket', () => fs.existsSync(sock), 15_000, 100);
  const bus = `unix:path=${sock}`;
  const abrmd = spawn('tpm2-abrmd', ['--session', '--allow-root', '--flush-all', `--tcti=swtpm:host=127.0.0.1,port=${port}`], { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'abrmd.log'), 'w')], env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: bus } });
  children.push(abrmd);
  const env = { DBUS_SESSION_BUS_ADDRESS: bus, TPM2_PKCS11_TCTI: 'tabrmd:bus_type=session', TPM2TOOLS_TCTI: 'tabrmd:bus_type=session' };
  // abrmd registers its bus name once it has talked to the TPM.
  await waitFor('tpm2-abrmd', () => spawnSync('tpm2_getcap', ['properties-fixed'], { env: { ...process.env, ...env }, stdio: 'ignore', timeout: 5_000 }).status === 0, 20_000, 100);
  return {
    dir,
    env,
    async stop() {
      for (const c of children.reverse()) {
        if (c.exitCode === null) {
          c.kill('SIGTERM');
          await new Promise((r) => { c.once('exit', r); setTimeout(r, 3_000); });
        }
      }
    },
  };
}

/** swtpm_setup's configuration in the temp dir (never the machine's): no EK certificates (no local CA needed). */
function writeSetupConfig(dir: string): string {
  const conf = path.join(dir, 'swtpm_setup.conf');
  fs.writeFileSync(conf, `create_certs_tool = /bin/true\nactive_pcr_banks = sha256\n`);
  return conf;
}

/**
 * swtpm_setup with EK certificates from swtpm_localca, whose CA (root + intermediate) lives in `caDir` (made on
 * first use; TPMs set up with the same dir share the vendor CA). Nothing of the machine's /etc or /var is used.
 */
function writeLocalCaConfig(dir: string, caDir: string): string {
  fs.mkdirSync(caDir, { recursive: true });
  const caConf = path.join(dir, 'swtpm-localca.conf');
  fs.writeFileSync(caConf, `statedir = ${caDir}\nsigningkey = ${caDir}/signkey.pem\nissuercert = ${caDir}/issuercert.pem\ncertserial = ${caDir}/certserial\n`);
  const caOpts = path.join(dir, 'swtpm-localca.options');
  fs.writeFileSync(caOpts, '--platform-manufacturer DeviceTrustLab\n--platform-version 2.1\n--platform-model swtpm\n');
  const conf = path.join(dir, 'swtpm_setup.conf');
  fs.writeFileSync(conf, `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${caConf}\ncreate_certs_tool_options = ${caOpts}\nactive_pcr_banks = sha256\n`);
  return conf;
}

/** The vendor CA certificates (root and intermediate, PEM) of a `caDir` used with startSoftTpm({ ekCa }). */
export function softTpmEkCaPem(caDir: string): string[] {
  return ['swtpm-localca-rootca-cert.pem', 'issuercert.pem'].map((f) => fs.readFileSync(path.join(caDir, f), 'utf8'));
}
