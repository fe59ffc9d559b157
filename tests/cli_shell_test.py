#!/usr/bin/env python3
"""cli_shell_test.py -- issue 16's Build 3: `sprig shell` (and `sprig` with
no command on a terminal) driven through a pseudo-terminal: tab completion
of commands, subcommands, databases, collections and views; commands as in
the CLI with a current database (`use`); `format json|table|csv` and
--format on a line; errors that leave the shell running; Ctrl-C dropping
the line; history kept across sessions and recalled with the Up arrow; long
output through the pager and short output not.  Then --format table and csv
on one-shot commands, and a bad --format refused before anything is done.

Registered with ctest as `cli_shell` by tools/CMakeLists.txt:
    python3 tests/cli_shell_test.py BUILD/tools/sprig SCRATCH_DIR SOURCE_DIR
"""
import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import time

BIN, T, SRC = (os.path.abspath(a) for a in sys.argv[1:4])
DATA = os.path.join(T, "data")
SCHEMA = os.path.join(SRC, "examples", "schemas", "demo.json")
failures = []
passes = 0


def check(name, ok, detail=""):
    global passes
    if ok:
        passes += 1
    else:
        failures.append(name)
        print("FAIL: %s\n    %s" % (name, detail.replace("\n", "\n    ")))


def sprig(*args, stdin=None):
    p = subprocess.run([BIN, "--path", DATA] + list(args), input=stdin,
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class Session:
    """`sprig ARGS` on a pseudo-terminal of ROWS x 120."""

    def __init__(self, args, rows=40, pager=""):
        env = dict(os.environ, HOME=T, SPRIG_PAGER=pager, TERM="xterm")
        env.pop("SPRIG_HISTORY", None)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(T)
            os.execve(BIN, [BIN] + args, env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, 120, 0, 0))
        self.buf = ""

    def read_until(self, text, timeout=30.0):
        """Read until `text` appears after what was read before; returns
        what came (empty if it did not come)."""
        end = time.time() + timeout
        got = ""
        while time.time() < end:
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(self.fd, 65536).decode(errors="replace")
                except OSError:
                    break
                got += chunk
                if text in got:
                    return got
        return got if text in got else ""

    def send(self, keys):
        # libedit puts the terminal in raw mode (flushing what was typed
        # before) each time it starts reading a line, a moment after the
        # prompt is written: give it that moment, as a person would.
        time.sleep(0.3)
        os.write(self.fd, keys.encode())

    def line(self, line, until=None):
        """Type a line and Enter; returns the output up to the next
        prompt."""
        self.send(line + "\r")
        return self.read_until(until or "> ")

    def wait(self, again=None):
        """The exit status, within 90 s (ASan's leak check on a loaded
        machine).  `again`: keys to send again every 5 s while it runs
        (libedit flushes keys typed before it set the terminal up)."""
        end = time.time() + 90
        nudge = time.time() + 5
        while time.time() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            if again and time.time() > nudge:
                self.send(again)
                nudge = time.time() + 5
            self.read_until("\0", 0.1)
        os.kill(self.pid, 9)
        return None


def prompt_after(out, db="default"):
    return out.rstrip().endswith("sprig:%s>" % db)


def setup():
    shutil.rmtree(T, ignore_errors=True)
    os.makedirs(T)
    sprig("demo")
    rc, _, err = sprig("--schema", SCHEMA, "db", "create", "zeta", "--schema",
                       "demo")
    check("setup: databases default and zeta", rc == 0, err)


def test_completion_and_commands():
    s = Session(["--path", DATA, "--schema", SCHEMA, "shell"])
    out = s.read_until("sprig:default> ")
    check("the shell starts with its banner and prompt",
          "shell on %s" % DATA in out, out)
    s.send("doc li\t")
    check("Tab completes a subcommand (doc li -> doc list)",
          s.read_until("st ") != "")
    s.send("mes\t")
    check("Tab completes a collection (mes -> messages)",
          s.read_until("sages ") != "")
    out = s.line("--limit 1")
    check("the completed line runs: doc list messages --limit 1",
          '"text": "Hello from Sprig!"' in out and prompt_after(out), out)
    s.send("view query messages \t")
    check("Tab completes a view (by-author)", s.read_until("by-author") != "")
    out = s.line(" --key '\"ada\"' --limit 1")
    check("view query with a quoted key", '"key": "ada"' in out, out)
    s.send("pub\t")
    check("Tab completes a command (pub -> pubsub)", s.read_until("sub ") != "")
    s.send("\x03")
    out = s.read_until("sprig:default> ")
    check("Ctrl-C drops the line and keeps the shell", out != "", out)
    s.send("use z\t")
    check("Tab completes a database (z -> zeta)", s.read_until("eta") != "")
    out = s.line("", until="sprig:zeta> ")
    check("use zeta: the prompt names the current database", out != "", out)
    out = s.line("doc count messages")
    check("commands run on the current database", "\r\n0\r\n" in out, out)
    out = s.line("doc count messages --db default")
    check("--db on a line, for that line", "\r\n4\r\n" in out, out)
    out = s.line("use nosuch")
    check("use of a missing database: an error, the shell goes on",
          "no database named 'nosuch'" in out and prompt_after(out, "zeta"),
          out)
    out = s.line("use default", until="sprig:default> ")
    check("use default", out != "", out)
    out = s.line("format table")
    out = s.line("doc list messages --limit 2")
    check("format table: a table",
          "id  revision  contents" in out and "--  --------" in out, out)
    out = s.line("db list --format csv")
    check("--format csv on a line wins for that line",
          "name,schema\r\r\ndefault,demo" in out or
          "name,schema\r\n" in out, out)
    out = s.line("format json")
    out = s.line("doc get messages 999")
    check("an error (exit 3) is printed and the shell goes on",
          "not found" in out and prompt_after(out), out)
    out = s.line("serve")
    check("serve does not run inside the shell",
          "does not run inside the shell" in out, out)
    out = s.line("--path /tmp doc list messages")
    check("--path on a line is refused", "does not change it" in out, out)
    out = s.line("doc put messages '{\"from\": \"shell\", \"text\": \"a b\"}'")
    check("a quoted JSON argument with spaces", '"id": 5' in out, out)
    nd = os.path.join(T, "three.ndjson")
    with open(nd, "w") as f:
        f.write('{"from":"a"}\n{"from":"b"}\n{"from":"c"}\n')
    out = s.line("doc import messages %s --db zeta" % nd)
    check("doc import on a terminal: the progress bar's last line, then "
          "the result",
          "\rimport: 3 docs, 39 B of 39 B in " in out and "\x1b[K" in out
          and '"imported": 3' in out, repr(out))
    s.line("doc count messages")
    s.send("exit\r")
    check("exit leaves with status 0", s.wait(again="exit\r") == 0)
    hist = open(os.path.join(T, ".sprig_history")).read()
    check("history is saved to ~/.sprig_history",
          "doc\\040count\\040messages" in hist or "doc count messages" in hist,
          hist)


def test_history_recall():
    s = Session(["--path", DATA])  # no command on a terminal: the shell
    out = s.read_until("sprig:default> ")
    check("`sprig` with no command on a terminal is the shell",
          "shell on" in out, out)
    s.send("\x1b[A\x1b[A")  # Up twice: before `exit`, `doc count messages`
    check("the Up arrow recalls the previous session's commands",
          s.read_until("doc count messages") != "")
    out = s.line("")
    check("the recalled command runs", "\r\n5\r\n" in out, out)
    s.send("\x04")
    check("Ctrl-D leaves with status 0", s.wait(again="\x04") == 0)


def test_pager():
    s = Session(["--path", DATA, "shell"], rows=10,
                pager="sed s/^/PAGED:/")
    s.read_until("sprig:default> ")
    out = s.line("doc list messages")
    check("long output on a terminal goes through the pager",
          "PAGED:[" in out and "PAGED:]" in out, out)
    out = s.line("doc count messages")
    check("short output does not", "PAGED" not in out and "5" in out, out)
    s.send("exit\r")
    s.wait(again="exit\r")


def test_one_shot_formats():
    rc, out, err = sprig("doc", "list", "messages", "--limit", "2",
                         "--format", "csv")
    want = ('id,revision,contents\r\n'
            '1,1,"{""from"":""ada"",""text"":""Hello from Sprig!""}"\r\n'
            '2,2,"{""from"":""grace"",""text"":""Edited: revisions go up by '
            'one.""}"\r\n')
    check("--format csv on a one-shot command", rc == 0 and out == want,
          repr(out) + err)
    rc, out, err = sprig("--format", "table", "db", "list")
    want = "name     schema\n-------  ------\ndefault  demo\nzeta     demo\n"
    check("--format table on a one-shot command", rc == 0 and out == want,
          repr(out) + err)
    rc, out, err = sprig("--format", "table", "doc", "count", "messages")
    check("a scalar in a table is itself", rc == 0 and out == "5\n", out)
    rc, out, err = sprig("--format", "table", "doc", "list", "messages",
                         "--from", "99")
    check("an empty table", rc == 0 and out == "(no rows)\n", out)
    rc, out, err = sprig("--format", "xml", "doc", "put", "messages", "{}")
    check("a bad --format is refused (exit 2)",
          rc == 2 and "--format 'xml' is not json, table or csv" in err, err)
    rc, out, err = sprig("doc", "count", "messages")
    check("... before anything is done", out == "5\n", out)


setup()
test_completion_and_commands()
test_history_recall()
test_pager()
test_one_shot_formats()
print("cli_shell: %d passed, %d failed" % (passes, len(failures)))
sys.exit(1 if failures else 0)
