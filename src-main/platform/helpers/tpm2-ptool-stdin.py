# Runs tpm2_ptool (a Python program; its path is argv[1]) once per step, in this one Python process, with the
# steps read from standard input as JSON: tpm2_ptool takes PINs only as arguments, which every local user sees in
# `ps`, and each start of it costs a Python start and its imports (about half a second). Run by
# src-main/platform/linux-keys.ts as `python3 -c <this text> <tpm2_ptool>`; keep PIN option names out of this text
# (it is on our command line).
#
# Input: [{"args": [...], "ifNoId": bool}, ...]. "{id}" in an argument is the primary key id the steps before
# reported ("id: N"); a step with ifNoId is skipped once one is known. Output: one JSON line per step that ran,
# {"step", "code", "out"}; the first failing step ends the run with its exit code.
import contextlib, io, json, re, runpy, sys, traceback

tool = sys.argv[1]
known = None
for step in json.load(sys.stdin):
    if step.get("ifNoId") and known is not None:
        continue
    args = step["args"]
    if any("{id}" in a for a in args):
        if known is None:
            print(json.dumps({"step": args[0], "code": 3, "out": "no primary key id was reported before this step"}), flush=True)
            sys.exit(3)
        args = [a.replace("{id}", known) for a in args]
    sys.argv = [tool] + args
    buf = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(buf):
        try:
            runpy.run_path(tool, run_name="__main__")
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                sys.stderr.write("%s\n" % e.code)
                code = 1
        except Exception:
            traceback.print_exc()
            code = 1
    out = buf.getvalue()
    m = re.findall(r"\bid:\s*(\d+)", out)
    if code == 0 and m and known is None:
        known = m[0]
    print(json.dumps({"step": args[0], "code": code, "out": out}), flush=True)
    if code != 0:
        sys.exit(code)
