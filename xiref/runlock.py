"""One writer per run directory: a lock file holding the writer's process id and host.

Two `xiref train` processes writing the same directory (two campaign launchers, a resume typed while the
run is still going) would interleave checkpoints and progress rows. `train` therefore holds
`<out>/run.lock` for its whole life; a second process finds the holder alive and stops with one line. A
lock left by a process that is gone (killed, machine rebooted) is stale and taken over. On another host
the holder cannot be checked, so the lock is respected and the message says how to remove it, unless the
caller knows that host is gone (`release_lock_of_hosts`: the Ray campaign runner, for nodes Ray reports dead).
"""
import contextlib
import os
import socket

from .envs import UserError

LOCK_NAME = "run.lock"


def proc_stat(pid):
    """The fields of /proc/<pid>/stat after the command name: [state, ppid, …]; None without /proc (not Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _alive(pid):
    """True if process pid exists and is not a zombie (killed, its exit status not yet collected by a parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:            # exists, owned by someone else
        pass
    fields = proc_stat(pid)
    return fields is None or fields[0] != "Z"


def holder(out):
    """(pid, host) of a live writer of run directory `out` other than this process, else None."""
    path = os.path.join(out, LOCK_NAME)
    try:
        with open(path) as f:
            pid_text, _, host = f.read().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):      # no lock, or one torn by a crash while being written: not held
        return None
    if host and host != socket.gethostname():
        return pid, host
    if pid == os.getpid() or not _alive(pid):
        return None
    return pid, host


def release_lock_of_hosts(out, hosts):
    """Remove out's lock when its holder runs on one of `hosts`, hosts known to be gone (a cluster node reported
    dead): its process cannot be checked from here, so holder() would respect it forever. True if removed."""
    held = holder(out)
    if held is None or held[1] not in hosts:
        return False
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(out, LOCK_NAME))
    return True


@contextlib.contextmanager
def run_lock(out):
    """Hold `<out>/run.lock` while the block runs; UserError if another live process holds it."""
    path = os.path.join(out, LOCK_NAME)
    for _ in range(3):                 # a stale lock is removed and creation retried
        held = holder(out)
        if held is not None:
            pid, host = held
            raise UserError(f"{out} is being written by another xiref process (pid {pid} on {host}); wait for "
                            f"it to finish, stop it, or delete {path} if that process is gone")
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if holder(out) is None:    # still stale (or torn): remove it; a live holder is caught above
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()} {socket.gethostname()}\n")
        break
    else:
        raise UserError(f"could not take the lock {path}")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
