import { useEffect, useRef } from 'react';

interface Props {
  open: boolean;
  onCancel: () => void;
  onConfirm: () => void;
}

/** Force renewal removes the certificate: the user is told what happens before anything does. */
export function ForceRenewalDialog({ open, onCancel, onConfirm }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} className="confirm" aria-labelledby="force-title" aria-describedby="force-what" onCancel={(e) => { e.preventDefault(); onCancel(); }}>
      <h2 id="force-title">Force renewal?</h2>
      <div id="force-what">
        <p>
          Force renewal <strong>removes this device's certificate and its private key</strong> and enrolls a new one from scratch, proving the
          device and you to the directory again.
        </p>
        <p>Use it when the certificate was revoked by mistake, is damaged, or its private key was lost. For a normal renewal, use “Renew now”.</p>
        <ul>
          <li>It needs the corporate network or VPN (the IWA web app must answer).</li>
          <li>Until the new certificate is installed, apps that require a trusted device may refuse sign-in.</li>
          <li>If enrollment fails, the current certificate is put back.</li>
        </ul>
      </div>
      <div className="dialog-actions">
        <button type="button" onClick={onCancel} autoFocus>
          Cancel
        </button>
        <button type="button" className="danger" onClick={onConfirm}>
          Remove and re-enroll
        </button>
      </div>
    </dialog>
  );
}
