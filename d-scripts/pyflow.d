#!/usr/sbin/dtrace -s
/*
 * pyflow.d: Python function entries and returns, for a call-flow view.
 *
 * Traces:     CPython's USDT markers function__entry and function__return
 *             (args: filename, function name, line number).
 * Providers:  python (USDT: CPython built --with-dtrace; 3.8 to 3.11 and 3.15 and later).
 * Parameters: $target, the interpreter's process id (dtrace -p PID or -c CMD). dtk
 *             substitutes the pid, or `*` to trace every Python process.
 *             On CPython 3.9 and 3.11, where dtk knows the address of the running
 *             thread's state, the script also reads the interpreter's structures:
 *   MODEL           0: markers only; 1: 3.9's PyFrameObject; 2: 3.11's _PyInterpreterFrame
 *   TSTATE_CURRENT  address of _PyRuntime.gilstate.tstate_current (0: not known; then every
 *                   entry is a -> and every return a <-)
 *   TS_CFRAME, CF_CURRENT_FRAME   the running frame: PyThreadState.cframe and
 *                   _PyCFrame.current_frame (3.11), or 0 and PyThreadState.frame (3.9)
 *   TS_CUREXC       PyThreadState.curexc_type
 *   FRAME_LASTI, FRAME_STACKTOP   in PyFrameObject (3.9): f_lasti is -1 until the frame
 *                   first runs, f_stacktop is set only while it is suspended at a yield
 *   FRAME_PREV_INSTR, FRAME_OWNER   in _PyInterpreterFrame (3.11; owner 1: a generator)
 *   GEN_IFRAME, GEN_FRAME_STATE     gi_iframe and gi_frame_state in a generator (3.11)
 *   RESUME, RESUME_QUICK, YIELD_VALUE   opcodes (3.11): a frame resumes after a yield at a
 *                   RESUME whose oparg is not 0, or at the YIELD_VALUE itself for throw()
 * Output:     one line per event:
 *   timestamp pid tid kind file line function
 *   where kind is -> for an entry and <- for a return; with TSTATE_CURRENT also y> for the
 *   entry that resumes a generator (its frame is at a RESUME after a yield, or at the yield
 *   itself for throw() and close()), <y for a generator's return by yield (its state is
 *   suspended), and <! for a return by an exception (one is set on the thread).
 *   dtk reads these lines as the contract in src/commands/pyflow/mod.rs (CONTRACT)
 *   declares them; a unit test fails when the two disagree.
 *
 * CPython 3.11 fires function__entry only while the `line` marker is enabled (its semaphore
 * is set; CPython issue #98894): the last clause enables it and records nothing. 3.15 has no
 * `line` marker, so that clause names `line` by a glob that also matches function-entry and
 * function-return (`[lf][iu]n[ec]*`): the description matches on every version with function
 * markers, and enabling those twice changes nothing.
 */

#pragma D option quiet
#pragma D option switchrate=20hz
/*
 * The ring buffer is mapped into dtk twice over (the kernel maps its data pages two times so
 * that a record never wraps), and all of it is resident from the start: 4 MB costs 8 MB of
 * memory. The programs wake the reader when it is a quarter full, which leaves 3 MB for what
 * arrives before the reader runs; past that, lost events are counted and reported. For
 * longer bursts, run this script with `dtk run -x bufsize=SIZE`.
 */
#pragma D option bufsize=4m

inline int MODEL = 0;
inline uint64_t TSTATE_CURRENT = 0;
inline int TS_CFRAME = 56;
inline int CF_CURRENT_FRAME = 8;
inline int TS_CUREXC = 96;
inline int FRAME_LASTI = 104;
inline int FRAME_STACKTOP = 72;
inline int FRAME_PREV_INSTR = 56;
inline int FRAME_OWNER = 69;
inline int GEN_IFRAME = 80;
inline int GEN_FRAME_STATE = 75;
inline int RESUME = 151;
inline int RESUME_QUICK = 150;
inline int YIELD_VALUE = 86;

this string kind;

python$target:::function-entry
{
	this->kind = "->";
}

python$target:::function-return
{
	this->kind = "<-";
}

/* The frame running now is the thread's (the GIL holder's) current frame. */
python$target:::function-entry,
python$target:::function-return
/MODEL && TSTATE_CURRENT/
{
	this->tstate = *(uint64_t *)copyin(TSTATE_CURRENT, 8);
	this->cframe = TS_CFRAME ? *(uint64_t *)copyin(this->tstate + TS_CFRAME, 8) :
	    this->tstate;
	this->frame = *(uint64_t *)copyin(this->cframe + CF_CURRENT_FRAME, 8);
	this->exception = *(uint64_t *)copyin(this->tstate + TS_CUREXC, 8);
}

python$target:::function-entry
/MODEL == 1 && TSTATE_CURRENT/
{
	this->lasti = *(int *)copyin(this->frame + FRAME_LASTI, 4);
	this->kind = this->lasti >= 0 ? "y>" : "->";
}

python$target:::function-return
/MODEL == 1 && TSTATE_CURRENT/
{
	this->stacktop = *(uint64_t *)copyin(this->frame + FRAME_STACKTOP, 8);
	this->kind = this->exception ? "<!" : this->stacktop ? "<y" : "<-";
}

python$target:::function-entry
/MODEL == 2 && TSTATE_CURRENT/
{
	this->instr = *(uint16_t *)copyin(*(uint64_t *)copyin(this->frame + FRAME_PREV_INSTR, 8),
	    2);
	this->op = this->instr & 0xff;
	this->kind = ((this->op == RESUME || this->op == RESUME_QUICK) &&
	    (this->instr >> 8) != 0) || this->op == YIELD_VALUE ? "y>" : "->";
}

python$target:::function-return
/MODEL == 2 && TSTATE_CURRENT/
{
	this->owner = *(uint8_t *)copyin(this->frame + FRAME_OWNER, 1);
	this->state = *(int8_t *)copyin(this->frame - GEN_IFRAME + GEN_FRAME_STATE, 1);
	this->kind = this->exception ? "<!" :
	    this->owner == 1 && this->state < 0 ? "<y" : "<-";
}

python$target:::function-entry,
python$target:::function-return
{
	printf("%d %d %d %s %s %d %s\n", timestamp, pid, tid, this->kind, copyinstr(arg0),
	    (int)arg2, copyinstr(arg1));
}

python$target:::[lf][iu]n[ec]*
/0/
{
}
