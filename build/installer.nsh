; NSIS include for electron-builder's Windows installer (electron-builder.yml: nsis.include).
;
; Install-time parameters, as the original registration task documents them (case does not matter):
;   "Device Trust Agent Setup 0.1.0.exe" /q2 OktaURL=https://example.okta.com HttpProxy=http://proxy:3128
;       HttpProxyPacLocation=http://pac.example.com/proxy.pac SkipBrowserSetup=true SkipTPM=true
; /q2 (or /qn, or NSIS's own /S) installs silently. Each parameter given is written to managed configuration,
; HKLM\SOFTWARE\Okta\DeviceTrust (64-bit view), which the agent reads at every run; Group Policy's
; HKLM\SOFTWARE\Policies\Okta\DeviceTrust wins over it. The URL value is named OktaOrgUrl, as the original's.
; After the files are in place the agent registers BOTH scheduled tasks (issue 25.3) and runs the device pass once:
;   install --device --no-run   the device task (runs as SYSTEM: it writes HKLM browser policy) and the Event Log
;                               source (only an administrator may register one; the installer is elevated)
;   install --user --no-run     the user task (every member of BUILTIN\Users, at their logon); its registration
;                               starts it for whoever is signed in, AS THEM. --no-run: no first user pass as the
;                               installing account, which is SYSTEM under SCCM/Intune and has no user certificate
;   run --device                the first device pass, as this (elevated) account: what the device task does anyway
; Uninstall removes both tasks, the Event Log source and the browser policies, and with RemoveCertificate=true the
; installing account's certificate. The MSI does the same through build/msi-project.cjs (electron-builder's
; msiProjectCreated hook).
; Every agent call runs the headless program shipped in resources\headless (its own node.exe and bundled script),
; never the Electron executable, so the scheduled tasks `install` registers start the headless program too.

!include LogicLib.nsh
!include FileFunc.nsh

!define DTA_SETTINGS_KEY "SOFTWARE\Okta\DeviceTrust"
!define DTA_AGENT '"$INSTDIR\resources\headless\node.exe" "$INSTDIR\resources\headless\device-trust-agent.mjs"'

; Reads NAME=value from the command line into $R1 ("" when absent). A leading space is the option delimiter,
; so the parameters need no / or - prefix, exactly as the original's command line.
!macro DTA_GetParam NAME
  ${GetParameters} $R0
  StrCpy $R0 " $R0"
  ClearErrors
  ${GetOptions} $R0 " ${NAME}=" $R1
  ${If} ${Errors}
    StrCpy $R1 ""
  ${EndIf}
!macroend

!macro DTA_WriteParam NAME VALUENAME
  !insertmacro DTA_GetParam "${NAME}"
  ${If} $R1 != ""
    WriteRegStr HKLM "${DTA_SETTINGS_KEY}" "${VALUENAME}" "$R1"
    DetailPrint "Managed configuration: ${VALUENAME}=$R1"
  ${EndIf}
!macroend

!macro customInit
  ; The original's /q2 (and msiexec-style /qn) mean silent, like /S.
  ${GetParameters} $R0
  StrCpy $R0 " $R0"
  ClearErrors
  ${GetOptions} $R0 " /q2" $R1
  ${IfNot} ${Errors}
    SetSilent silent
  ${EndIf}
  ClearErrors
  ${GetOptions} $R0 " /qn" $R1
  ${IfNot} ${Errors}
    SetSilent silent
  ${EndIf}
!macroend

!macro customInstall
  SetRegView 64
  !insertmacro DTA_WriteParam "OktaURL" "OktaOrgUrl"
  !insertmacro DTA_WriteParam "HttpProxy" "HttpProxy"
  !insertmacro DTA_WriteParam "HttpProxyPacLocation" "HttpProxyPacLocation"
  !insertmacro DTA_WriteParam "SkipBrowserSetup" "SkipBrowserSetup"
  !insertmacro DTA_WriteParam "SkipTPM" "SkipTPM"
  ; Both tasks, each registration checked; a failure is logged, not fatal: the admin can re-run the same command.
  nsExec::ExecToLog '${DTA_AGENT} install --device --no-run'
  Pop $R2
  ${If} $R2 != 0
    DetailPrint "device-trust-agent install --device exited with $R2: run it again as administrator"
  ${EndIf}
  nsExec::ExecToLog '${DTA_AGENT} install --user --no-run'
  Pop $R2
  ${If} $R2 != 0
    DetailPrint "device-trust-agent install --user exited with $R2: run it again as administrator"
  ${EndIf}
  nsExec::ExecToLog '${DTA_AGENT} run --device'
  Pop $R2
  ${If} $R2 != 0
    DetailPrint "device-trust-agent run --device exited with $R2 (the scheduled task retries)"
  ${EndIf}
!macroend

!macro customUnInstall
  ; An update runs the old uninstaller with --updated: keep tasks, policies and certificates then.
  ${IfNot} ${isUpdated}
    nsExec::ExecToLog '${DTA_AGENT} uninstall --user'
    Pop $R2
    ; The device task and the Event Log source.
    nsExec::ExecToLog '${DTA_AGENT} uninstall --device'
    Pop $R2
    nsExec::ExecToLog '${DTA_AGENT} browser-setup --remove'
    Pop $R2
    !insertmacro DTA_GetParam "RemoveCertificate"
    ${If} $R1 == "true"
      nsExec::ExecToLog '${DTA_AGENT} remove-certificate'
      Pop $R2
    ${EndIf}
  ${EndIf}
!macroend
