import { discoverOrg } from '../../core/enrollment/discovery.js';
import { checkHostPatterns, hostPatternOptions } from '../../core/certificates/host-patterns.js';
import { requireOrgUrl } from '../../core/config.js';
import { AgentError, ExitCode } from '../../base/errors.js';
import { HttpClient } from '../../core/net/http.js';
import { removeBrowserSetup } from '../../core/certificates/removal.js';
import type { PolicyResult } from '../../platform/browser-policy.js';
import * as model from '../../platform/policy-model.js';
import type { Command } from '../command.js';
import { httpOptionsFor } from '../../core/proxy/options.js';

const FORMATS = ['chromium-json', 'firefox-json', 'windows-reg', 'macos-mobileconfig'] as const;
type Format = (typeof FORMATS)[number];

export const browserSetupCommand: Command = {
  name: 'browser-setup',
  summary: 'write, remove (uninstall) or print the browser policy that makes browsers present the certificate',
  usage: `device-trust-agent browser-setup [--remove | --print FORMAT] [--json]
  (no option)     write it now for the org's mTLS hosts (what the device task does)
  --remove        remove our entries (uninstall); others' policies stay
  --print FORMAT  print it for deployment by Group Policy or MDM instead (with SkipBrowserSetup=true):
                  ${FORMATS.join(', ')}`,
  options: { remove: { type: 'boolean' }, print: { type: 'string' } },
  async run(ctx) {
    const loaded = ctx.config();
    const { config } = loaded;
    if (ctx.values.remove) {
      const res = await removeBrowserSetup(loaded, ctx.platform(), ctx.context.events);
      report(ctx, res, 'Removed');
      return res.skipped.length && !res.written.length ? ExitCode.LOCAL_ERROR : ExitCode.OK;
    }
    const format = ctx.values.print as string | undefined;
    if (format !== undefined && !FORMATS.includes(format as Format)) {
      throw new AgentError('config', 'USAGE', `Unknown --print format "${format}".`, `Use one of: ${FORMATS.join(', ')}.`);
    }
    const http = new HttpClient(httpOptionsFor(config, ctx.context));
    let m: model.BrowserPolicyModel;
    try {
      const org = await discoverOrg(http, requireOrgUrl(config));
      // The same host-pattern rules as a run (core/certificates/host-patterns.ts): refused patterns are reported, never written.
      const checked = checkHostPatterns(org.mtls.hostPatterns, hostPatternOptions(loaded));
      for (const r of checked.refused) ctx.io.err(`Refused host pattern "${r.pattern}": ${r.reason}. It is not written.`);
      m = { patterns: checked.accepted, issuerCN: org.ca.issuerCN };
    } finally {
      await http.close();
    }
    if (format) {
      ctx.io.out(render(format as Format, m).trimEnd());
      return ExitCode.OK;
    }
    const res = await ctx.platform().configureBrowsers(m.patterns, m.issuerCN);
    report(ctx, res, 'Written');
    return res.skipped.length && !res.written.length ? ExitCode.LOCAL_ERROR : ExitCode.OK;
  },
};

function render(format: Format, m: model.BrowserPolicyModel): string {
  switch (format) {
    case 'chromium-json':
      return model.chromiumPolicyJson(m);
    case 'firefox-json':
      return JSON.stringify({ policies: model.firefoxPolicies('linux') }, null, 2);
    case 'windows-reg':
      return model.renderRegFile([...model.CHROMIUM_BROWSERS.filter((b) => b.windowsKey).flatMap((b) => model.registryListValues(`${b.windowsKey}\\${model.AUTO_SELECT_POLICY}`, model.autoSelectEntries(m))),
        ...model.firefoxRegistryValues(model.firefoxPolicies('win32'))]);
    case 'macos-mobileconfig':
      return model.macConfigurationProfile(m, { identifier: 'com.example.devicetrustagent.browsers', uuid: model.stableUuid });
  }
}

function report(ctx: Parameters<Command['run']>[0], res: PolicyResult, verb: string): void {
  if (ctx.json) {
    ctx.io.out(JSON.stringify(res, null, 2));
    return;
  }
  ctx.io.out(`${verb}: ${res.written.length ? res.written.join(', ') : 'nothing'}`);
  for (const s of res.skipped) ctx.io.out(`  not changed: ${s.dir} (${s.reason})`);
}
