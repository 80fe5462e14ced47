// electron-builder's msiProjectCreated hook (electron-builder.yml: msiProjectCreated): electron-builder writes the WiX
// project of the MSI (its templates/msi/template.xml, WiX 3 syntax: <Product>, conditions as element text), then
// calls this with the project's path before compiling it. The MSI gets the same agent calls as the NSIS installer
// (build/installer.nsh; issue 25.3/25.4): without them an MSI deployment registers no task and no Event Log source.
//
// The custom actions run the headless program the package installs (resources\headless), deferred and with
// Impersonate="no", i.e. as LocalSystem inside the installation transaction — the rights `install --device` needs
// (a SYSTEM task, the Event Log source) — never as the user who started msiexec:
//   install --device --no-run   device task + Event Log source; a failure fails (and rolls back) the install
//   install --user --no-run     user task for BUILTIN\Users; no first pass as the installing account (SYSTEM here)
//   run --device                first device pass; its failure is ignored (the task retries)
// Uninstall (REMOVE="ALL", and not as part of a major upgrade: UPGRADINGPRODUCTCODE is set then) removes both tasks,
// the source and the browser policy before the files go. Type 34 custom actions (Directory + ExeCommand): Windows
// Installer formats [APPLICATIONFOLDER] when it schedules them, so deferred actions see the path
// (learn.microsoft.com/windows/win32/msi/custom-action-type-34, …/obtaining-context-information-for-deferred-execution-custom-actions).
'use strict';
const fs = require('node:fs');

const AGENT = '&quot;[APPLICATIONFOLDER]resources\\headless\\node.exe&quot; &quot;[APPLICATIONFOLDER]resources\\headless\\device-trust-agent.mjs&quot;';

/** [id, agent arguments, Return ("check": a failure fails the install), when]. */
const ACTIONS = [
  ['DtaInstallDeviceTask', 'install --device --no-run', 'check', 'install'],
  ['DtaInstallUserTask', 'install --user --no-run', 'check', 'install'],
  ['DtaFirstDevicePass', 'run --device', 'ignore', 'install'],
  ['DtaUninstallUserTask', 'uninstall --user', 'ignore', 'uninstall'],
  ['DtaUninstallDeviceTask', 'uninstall --device', 'ignore', 'uninstall'],
  ['DtaRemoveBrowserPolicy', 'browser-setup --remove', 'ignore', 'uninstall'],
];
const CONDITION = {
  install: 'NOT REMOVE',
  uninstall: 'REMOVE="ALL" AND NOT UPGRADINGPRODUCTCODE',
};

function patchMsiProject(wxs) {
  if (wxs.includes('Id="DtaInstallDeviceTask"')) return wxs; // already patched
  const end = wxs.lastIndexOf('</Product>');
  if (end < 0) throw new Error('msi-project: no </Product> in the WiX project electron-builder wrote');
  const actions = ACTIONS.map(([id, args, ret]) =>
    `    <CustomAction Id="${id}" Directory="APPLICATIONFOLDER" ExeCommand="${AGENT} ${args}" Execute="deferred" Impersonate="no" Return="${ret}"/>`);
  // Install: after the files are there, each after the one before. Uninstall: from InstallInitialize on, each after the one
  // before it, so the order holds however the tool numbers the rows.
  const sequence = [];
  let prev = 'InstallFiles';
  for (const [id, , , when] of ACTIONS) {
    if (when !== 'install') continue;
    sequence.push(`      <Custom Action="${id}" After="${prev}">${CONDITION.install}</Custom>`);
    prev = id;
  }
  // Deferred actions must run inside the install script: the uninstall chain starts after InstallInitialize
  // (a Before= chain ending at RemoveFiles let wixl put its head before InstallInitialize).
  prev = 'InstallInitialize';
  const cond = CONDITION.uninstall.replace(/"/g, '&quot;');
  for (const [id, , , when] of ACTIONS) {
    if (when !== 'uninstall') continue;
    sequence.push(`      <Custom Action="${id}" After="${prev}">${cond}</Custom>`);
    prev = id;
  }
  let out = `${wxs.slice(0, end)}${actions.join('\n')}\n${wxs.slice(end)}`;
  // One InstallExecuteSequence: electron-builder's template may already have one (runAfterFinish).
  const seq = out.indexOf('</InstallExecuteSequence>');
  if (seq >= 0) out = `${out.slice(0, seq)}${sequence.join('\n')}\n        ${out.slice(seq)}`;
  else {
    const end2 = out.lastIndexOf('</Product>');
    out = `${out.slice(0, end2)}    <InstallExecuteSequence>\n${sequence.join('\n')}\n    </InstallExecuteSequence>\n  ${out.slice(end2)}`;
  }
  return out;
}

module.exports = async function msiProjectCreated(projectFile) {
  fs.writeFileSync(projectFile, patchMsiProject(fs.readFileSync(projectFile, 'utf8')));
};
module.exports.patchMsiProject = patchMsiProject;
module.exports.ACTIONS = ACTIONS;
