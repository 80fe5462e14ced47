# Device Trust Agent: TPM key attestation helper (Python 3, tpm2-pytss 1.x; docs/PROTOCOL.md §11). Run by
# src-main/platform/tpm-attest.ts as `python3 -c <this text>`: JSON lines on stdin and stdout; nothing written to a file.
import base64, binascii, io, json, os, sqlite3, sys

def out(o):
    sys.stdout.write(json.dumps(o) + "\n")
    sys.stdout.flush()

def fail(code, message):
    out({"ok": False, "code": code, "message": message})
    sys.exit(1)

try:
    import yaml
    from tpm2_pytss import ESAPI, ESYS_TR, TPM2_SE, TPM2_ALG, TPM2_ECC, TPMA_OBJECT, TPM2_RH
    from tpm2_pytss.types import (TPMT_SYM_DEF, TPM2B_PUBLIC, TPM2B_PRIVATE, TPM2B_SENSITIVE_CREATE, TPMT_PUBLIC,
        TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET, TPMT_SIG_SCHEME, TPM2B_DIGEST)
    from tpm2_pytss.utils import create_ek_template, NVReadEK
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    import hashlib
except Exception as e:  # noqa
    fail("TPM_ATTEST_UNAVAILABLE", "python3-tpm2-pytss is not usable (%s)" % e)

B64 = lambda b: base64.b64encode(bytes(b)).decode()
CKA_ID = 0x102
CKA_CLASS = 0
CKO_PRIVATE_KEY = 3
CKA_TPM2_OBJAUTH_ENC = 0x8F000001
CKA_TPM2_PUB_BLOB = 0x8F000002
CKA_TPM2_PRIV_BLOB = 0x8F000003

def read_line():
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    return json.loads(line)

def policy_ek(ectx):
    """A policy session satisfying the EK's default policy (PolicySecret(TPM_RH_ENDORSEMENT))."""
    sym = TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL)
    s = ectx.start_auth_session(ESYS_TR.NONE, ESYS_TR.NONE, TPM2_SE.POLICY, sym, TPM2_ALG.SHA256)
    ectx.policy_secret(ESYS_TR.ENDORSEMENT, s, b"", b"", b"", 0)
    return s

def find_key(store, key_id, token_label):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(store, "tpm2_pkcs11.sqlite3"), uri=True)
    db.row_factory = sqlite3.Row
    tok = db.execute("select * from tokens where label = ?", (token_label,)).fetchone()
    if tok is None:
        fail("TPM_KEY_NOT_FOUND", "no token labelled %s in %s" % (token_label, store))
    for row in db.execute("select * from tobjects where tokid = ?", (tok["id"],)):
        attrs = yaml.safe_load(io.StringIO(row["attrs"]))
        if attrs.get(CKA_CLASS) == CKO_PRIVATE_KEY and str(attrs.get(CKA_ID, "")).lower() == key_id.lower():
            pobj = db.execute("select * from pobjects where id = ?", (tok["pid"],)).fetchone()
            seal = db.execute("select * from sealobjects where tokid = ?", (tok["id"],)).fetchone()
            return tok, attrs, pobj, seal
    fail("TPM_KEY_NOT_FOUND", "the device key %s is not in the TPM token" % key_id)

def load_device_key(ectx, store, key_id, token_label):
    tok, attrs, pobj, seal = find_key(store, key_id, token_label)
    tconf = yaml.safe_load(io.StringIO(tok["config"]))
    if not tconf.get("empty-user-pin"):
        fail("TPM_TOKEN_HAS_PIN", "the TPM token has a user PIN; attestation needs the agent's empty-PIN token")
    pconf = yaml.safe_load(io.StringIO(pobj["config"]))
    if pconf.get("transient") or "esys-tr" not in pconf:
        fail("TPM_PRIMARY_TRANSIENT", "the token's primary key is not persistent")
    parent = ectx.tr_deserialize(binascii.unhexlify(pconf["esys-tr"]))
    ectx.tr_set_auth(parent, pobj["objauth"] or "")
    # The token's wrapping key, sealed under the primary; its auth is derived from the (empty) user PIN.
    salt = seal["userauthsalt"]
    salt = salt.encode() if isinstance(salt, str) else bytes(salt)
    sealauth = hashlib.sha256(b"" + salt).hexdigest()[:32]
    spub, _ = TPM2B_PUBLIC.unmarshal(bytes(seal["userpub"]))
    spriv, _ = TPM2B_PRIVATE.unmarshal(bytes(seal["userpriv"]))
    sealh = ectx.load(parent, spriv, spub)
    try:
        ectx.tr_set_auth(sealh, sealauth)
        wrapping = binascii.unhexlify(bytes(ectx.unseal(sealh)))
    finally:
        ectx.flush_context(sealh)
    objauth = b""
    enc = attrs.get(CKA_TPM2_OBJAUTH_ENC)
    if enc:
        iv, tag, ct = [binascii.unhexlify(x) for x in binascii.unhexlify(enc).decode().split(":")]
        d = Cipher(algorithms.AES(wrapping), modes.GCM(iv, tag)).decryptor()
        objauth = d.update(ct) + d.finalize()
    pub, _ = TPM2B_PUBLIC.unmarshal(binascii.unhexlify(attrs[CKA_TPM2_PUB_BLOB]))
    priv, _ = TPM2B_PRIVATE.unmarshal(binascii.unhexlify(attrs[CKA_TPM2_PRIV_BLOB]))
    h = ectx.load(parent, priv, pub)
    ectx.tr_set_auth(h, objauth)
    return h, pub

def ak_template():
    t = TPMT_PUBLIC.parse("ecc256:ecdsa-sha256:null",
        objectAttributes=TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN
        | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.SIGN_ENCRYPT)
    return TPM2B_PUBLIC(publicArea=t)

def main():
    tcti = os.environ.get("TPM2TOOLS_TCTI") or os.environ.get("TPM2_PKCS11_TCTI") or os.environ.get("TSS2_TCTI") or None
    req = read_line()
    if req.get("op") != "begin":
        fail("PROTOCOL", "expected begin")
    try:
        ectx = ESAPI(tcti)
    except Exception as e:
        fail("TPM_UNREACHABLE", "the TPM could not be reached (%s)" % e)
    try:
        nvr = NVReadEK(ectx)
        cert, template = create_ek_template("EK-RSA2048", nvr)
        if not cert:
            fail("TPM_NO_EK_CERT", "the TPM has no RSA EK certificate (NV index 0x1c00002)")
        ek, _, _, _, _ = ectx.create_primary(None, template, ESYS_TR.ENDORSEMENT)
        s = policy_ek(ectx)
        akpriv, akpub, _, _, _ = ectx.create(ek, TPM2B_SENSITIVE_CREATE(), ak_template(), session1=s)
        ectx.flush_context(s)
        s = policy_ek(ectx)
        ak = ectx.load(ek, akpriv, akpub, session1=s)
        ectx.flush_context(s)
        out({"ok": True, "ekCert": B64(cert), "akPublic": B64(akpub.publicArea.marshal())})
        req = read_line()
        if req.get("op") != "finish":
            fail("PROTOCOL", "expected finish")
        blob, _ = TPM2B_ID_OBJECT.unmarshal(base64.b64decode(req["credentialBlob"]))
        secret, _ = TPM2B_ENCRYPTED_SECRET.unmarshal(base64.b64decode(req["encryptedSecret"]))
        s = policy_ek(ectx)
        try:
            activated = ectx.activate_credential(ak, ek, blob, secret, session1=ESYS_TR.PASSWORD, session2=s)
        except Exception as e:
            fail("TPM_ACTIVATE_FAILED", "the TPM refused to activate the org's credential for this AK (%s)" % e)
        finally:
            ectx.flush_context(s)
        key, pub = load_device_key(ectx, req["store"], req["keyId"], req.get("token") or "device-trust")
        scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.ECDSA)
        scheme.details.any.hashAlg = TPM2_ALG.SHA256
        attest, sig = ectx.certify(key, ak, base64.b64decode(req["nonce"]), scheme)
        ectx.flush_context(key)
        ectx.flush_context(ak)
        ectx.flush_context(ek)
        out({"ok": True, "secret": B64(activated.buffer if hasattr(activated, "buffer") else activated), "tpmtPublic": B64(pub.publicArea.marshal()),
             "certifyInfo": B64(attest.attestationData if hasattr(attest, "attestationData") else attest), "signature": B64(sig.marshal())})
    except SystemExit:
        raise
    except Exception as e:
        if os.environ.get("DTA_ATTEST_DEBUG"):
            import traceback; traceback.print_exc()
        fail("TPM_ATTEST_FAILED", "%s: %s" % (type(e).__name__, e))

main()
