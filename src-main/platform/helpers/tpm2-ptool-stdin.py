# Runs tpm2_ptool (a Python program; its path is argv[1]) with its arguments read from standard input as a JSON
# array: tpm2_ptool takes PINs only as arguments, which every local user sees in `ps`. Run by
# src-main/platform/linux-keys.ts as `python3 -c <this text> <tpm2_ptool>`.
import json, runpy, sys

tool = sys.argv[1]
sys.argv = [tool] + json.load(sys.stdin)
runpy.run_path(tool, run_name="__main__")
