; NSIS include: command-line parameters of the Windows installer land in managed configuration
; (HKLM\Software\Okta\DeviceTrust). Tracked work: OktaURL=, HttpProxy=, HttpProxyPacLocation=,
; SkipBrowserSetup=true, SkipTPM=true.
