#!/usr/sbin/dtrace -s
/*
 * opens.d: files opened, with the result of each open.
 *
 * Traces:     open(2), openat(2), openat2(2) and creat(2), whichever the platform has
 *             (zdefs lets a description match nothing).
 * Providers:  syscall.
 * Parameters: the inline constants below. dtk sets them from its options; to run this file
 *             by hand, edit them.
 *   FILTER_PID   -p PID or -c: only this process (0: every process).
 *   FOLLOW       1: also its descendants (progenyof), as dtk does by default for -p and -c
 *                (--no-follow: 0). dtk's Linux engine follows the tree itself, in a kernel
 *                map kept at fork and exit, and then sets FILTER_PID to 0 and FOLLOW to 0.
 *   FILTER_NAME  -n NAME: only processes whose execname is exactly this ("": all).
 *   FILTER_ZONE  -z ZONE: only this zone ("": all). On Linux, dtk's engine reads
 *                `zonename == "X"` as: in cgroup X (a name or a path) or below it.
 *   FAILED_ONLY  -x: 1 to report only opens that failed.
 *   WANT_CWD     --full: 1 to report the working directory at each open, which a relative
 *                path is resolved from (0: cwd is printed as "", and not read).
 * Output:     first `tracing since TIMESTAMP`, then one line per open:
 *   timestamp walltimestamp zonename pid tid execname result errno flags dirfd cwd path
 *   where result is the fd, or -1 with errno set, and a relative path is relative to
 *   dirfd (-100, AT_FDCWD: the working directory, cwd, as it was at the return, with
 *   WANT_CWD). At the end, @unmatched counts the returns of opens whose entry was not
 *   recorded (lost, or begun before tracing); it is not printed when it is 0.
 *   dtk reads these lines as the contract in src/commands/opens.rs (CONTRACT) declares
 *   them; a unit test fails when the two disagree.
 *   Every return clause repeats the process filters, so that the kernel sends only the
 *   returns of the processes traced.
 */

#pragma D option quiet
#pragma D option zdefs
#pragma D option switchrate=20hz

inline int FILTER_PID = 0;
inline int FOLLOW = 0;
inline string FILTER_NAME = "";
inline string FILTER_ZONE = "";
inline int FAILED_ONLY = 0;
inline int WANT_CWD = 0;

BEGIN
{
	printf("tracing since %d\n", timestamp);
}

syscall::open:entry,
syscall::creat:entry
/(FILTER_PID == 0 || !FOLLOW && pid == FILTER_PID ||
  FOLLOW && progenyof(FILTER_PID)) &&
 (FILTER_NAME == "" || execname == FILTER_NAME) &&
 (FILTER_ZONE == "" || zonename == FILTER_ZONE)/
{
	self->path = arg0;
	self->dirfd = -100;	/* AT_FDCWD: the working directory */
	/* creat(path, mode) is open(path, O_CREAT|O_WRONLY|O_TRUNC, mode). */
	self->flags = probefunc == "creat" ? 0x241 : arg1;
}

syscall::openat:entry
/(FILTER_PID == 0 || !FOLLOW && pid == FILTER_PID ||
  FOLLOW && progenyof(FILTER_PID)) &&
 (FILTER_NAME == "" || execname == FILTER_NAME) &&
 (FILTER_ZONE == "" || zonename == FILTER_ZONE)/
{
	self->path = arg1;
	self->dirfd = (int)arg0;
	self->flags = arg2;
}

/* openat2(dfd, path, how, size): the flags are the first member of struct open_how. */
syscall::openat2:entry
/(FILTER_PID == 0 || !FOLLOW && pid == FILTER_PID ||
  FOLLOW && progenyof(FILTER_PID)) &&
 (FILTER_NAME == "" || execname == FILTER_NAME) &&
 (FILTER_ZONE == "" || zonename == FILTER_ZONE)/
{
	self->path = arg1;
	self->dirfd = (int)arg0;
	self->flags = *(uint64_t *)copyin(arg2, sizeof (uint64_t));
}

syscall::open:return,
syscall::creat:return,
syscall::openat:return,
syscall::openat2:return
/(FILTER_PID == 0 || !FOLLOW && pid == FILTER_PID ||
  FOLLOW && progenyof(FILTER_PID)) &&
 (FILTER_NAME == "" || execname == FILTER_NAME) &&
 (FILTER_ZONE == "" || zonename == FILTER_ZONE) &&
 self->path && (FAILED_ONLY == 0 || (int)arg0 < 0)/
{
	printf("%d %d %s %d %d %s %d %d %d %d %s %s\n", timestamp, walltimestamp, zonename,
	    pid, tid, execname, (int)arg0, errno, self->flags, self->dirfd,
	    WANT_CWD ? cwd : "",
	    copyinstr(self->path));
}

syscall::open:return,
syscall::creat:return,
syscall::openat:return,
syscall::openat2:return
/(FILTER_PID == 0 || !FOLLOW && pid == FILTER_PID ||
  FOLLOW && progenyof(FILTER_PID)) &&
 (FILTER_NAME == "" || execname == FILTER_NAME) &&
 (FILTER_ZONE == "" || zonename == FILTER_ZONE) &&
 !self->path/
{
	@unmatched = count();
}

syscall::open:return,
syscall::creat:return,
syscall::openat:return,
syscall::openat2:return
/(FILTER_PID == 0 || !FOLLOW && pid == FILTER_PID ||
  FOLLOW && progenyof(FILTER_PID)) &&
 (FILTER_NAME == "" || execname == FILTER_NAME) &&
 (FILTER_ZONE == "" || zonename == FILTER_ZONE) &&
 self->path/
{
	self->path = 0;
	self->flags = 0;
	self->dirfd = 0;
}
