# The smoke test that runs in a built image (see smoke.go): `pip check`
# where this Python has pip, then each pip requirement's modules imported,
# one requirement per child process so that none can hide another's
# failure. argv[1] is JSON: [[requirement, [module, ...]], ...]. Nothing of
# it is ever run as code: each module name is checked again here and given
# to importlib.import_module.
#
# Standard output carries only the lines that start with "imagehub smoke:";
# everything the packages print goes to standard error. A failure is one
# line "imagehub smoke: FAILED <what>: <error>". Python 3.7 and later.
import importlib.util
import json
import os
import subprocess
import sys

CHILD = r"""
import importlib, os, sys, traceback
result = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except BaseException as e:
        traceback.print_exc()
        msg = "%s: %s" % (type(e).__name__, e)
        msg = "".join(c if c.isprintable() else " " for c in msg)[:300]
        result.write("imagehub smoke: FAILED %s: import %s: %s\n" % (sys.argv[1], name, msg))
        result.flush()
        os._exit(3)
os._exit(0)
"""


def say(line):
    sys.stdout.write("imagehub smoke: " + line + "\n")
    sys.stdout.flush()


def valid(name):
    return all(p.isidentifier() and p.isascii() for p in name.split("."))


def pip_check():
    if importlib.util.find_spec("pip") is None:
        say("%s has no pip: no pip check" % sys.executable)
        return True
    say("pip check")
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_NO_COLOR="1")
    p = subprocess.Popen([sys.executable, "-m", "pip", "check"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=2, env=env)
    first = ""
    while True:
        line = p.stdout.readline(4096)
        if not line:
            break
        sys.stderr.buffer.write(line)
        if not first:
            first = line.decode("utf-8", "replace").strip()
    sys.stderr.flush()
    code = p.wait()
    if code != 0:
        first = "".join(c if c.isprintable() else " " for c in first)[:300]
        say("FAILED pip check: %s" % (first or "exit status %d" % code))
        return False
    return True


def imports(checks):
    ok = True
    for requirement, modules in checks:
        modules = [m for m in modules if valid(m)]
        if not modules:
            continue
        say("import %s: %s" % (requirement, ", ".join(modules)))
        code = subprocess.call([sys.executable, "-c", CHILD, requirement] + modules,
                               stdin=subprocess.DEVNULL, stderr=2)
        if code == 3:
            ok = False
        elif code != 0:
            how = "was killed by signal %d" % -code if code < 0 else "ended with exit status %d" % code
            say("FAILED %s: importing %s %s" % (requirement, ", ".join(modules), how))
            ok = False
    return ok


def main():
    checks = json.loads(sys.argv[1])
    ok = pip_check()
    ok = imports(checks) and ok
    say("passed" if ok else "failed")
    sys.exit(0 if ok else 1)


main()
