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
 *   On CPython 3.15 (MODEL 3), TSTATE_CURRENT is the address of the pointer to the main
 *   interpreter, and the running thread is the one that holds its GIL:
 *   GIL_HOLDER      offset of the GIL's last holder in the interpreter
 *   FRAME_CODE, FRAME_PREVIOUS   the code object (tagged in its low bits) and the caller's
 *                   frame in _PyInterpreterFrame
 *   CO_FLAGS, CO_FILENAME, CO_NAME, CO_FIRSTLINENO, STR_STATE, STR_ASCII_DATA   offsets in
 *                   PyCodeObject and in a str
 *   RESUME_JIT, RESUME_INSTRUMENTED   more forms of RESUME; a frame at a RESUME whose oparg
 *                   is not 0 is suspended at a yield (it returned by yield, or resumes)
 * Output:     `following pid ppid execname` at the first event of each process, then one
 *   line per event:
 *   timestamp pid tid kind file line function
 *   where kind is -> for an entry and <- for a return; with TSTATE_CURRENT also y> for the
 *   entry that resumes a generator (its frame is at a RESUME after a yield, or at the yield
 *   itself for throw() and close()), <y for a generator's return by yield (its state is
 *   suspended), and <! for a return by an exception (one is set on the thread).
 *   On 3.15, the entry that only makes a generator (its code has CO_GENERATOR, CO_COROUTINE
 *   or CO_ASYNC_GENERATOR, in a frame the thread owns) is not printed: sys.setprofile does not
 *   report it either. throw() and close() resume a generator without an entry marker: the
 *   first event inside such a generator's frame, or its return, prints its y> first.
 *   An exec that replaces a program prints x> with the new program's name as the file, line
 *   0 and no function: what follows is a new program's flow. Every exec is reported (this
 *   script also runs with no target, where it cannot tell a Python process from another);
 *   dtk keeps those of the processes it follows.
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
#pragma D option bufsize=64m

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
inline int GIL_HOLDER = 0;
inline int FRAME_CODE = 0;
inline int FRAME_PREVIOUS = 8;
inline int CO_FLAGS = 48;
inline int CO_FILENAME = 112;
inline int CO_NAME = 120;
inline int CO_FIRSTLINENO = 68;
inline int STR_STATE = 32;
inline int STR_ASCII_DATA = 40;
inline int RESUME_JIT = 201;
inline int RESUME_INSTRUMENTED = 244;

/* 3.15: generator frames (by address) running now, entered by a marker. */
int running[uint64_t];

this string kind;
this uint64_t unentered;
int announced[int];

/*
 * The first event of each process: `following PID PPID EXECNAME`, so that the processes
 * picked up (children of the target, or with no target every Python) can be announced.
 */
python$target:::function-entry,
python$target:::function-return
/!announced[pid]/
{
	announced[pid] = 1;
	printf("following %d %d %s\n", pid, ppid, execname);
}

python$target:::function-entry
{
	this->kind = "->";
}

python$target:::function-return
{
	this->kind = "<-";
}

python$target:::function-entry,
python$target:::function-return
/MODEL && MODEL != 3 && TSTATE_CURRENT/
{
	this->tstate = *(uint64_t *)copyin(TSTATE_CURRENT, 8);
}

python$target:::function-entry,
python$target:::function-return
/MODEL == 3 && TSTATE_CURRENT/
{
	this->tstate = *(uint64_t *)copyin(*(uint64_t *)copyin(TSTATE_CURRENT, 8) + GIL_HOLDER,
	    8);
}

/* The frame running now is the thread's (the GIL holder's) current frame. */
python$target:::function-entry,
python$target:::function-return
/MODEL && TSTATE_CURRENT/
{
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

/* 3.15: what the frame is, and where it stands. */
python$target:::function-entry,
python$target:::function-return
/MODEL == 3 && TSTATE_CURRENT/
{
	this->code = *(uint64_t *)copyin(this->frame + FRAME_CODE, 8) & ~(uint64_t)7;
	this->owner = *(uint8_t *)copyin(this->frame + FRAME_OWNER, 1);
	this->instr = *(uint16_t *)copyin(*(uint64_t *)copyin(this->frame + FRAME_PREV_INSTR, 8),
	    2);
	this->op = this->instr & 0xff;
	this->at_yield = (this->op == RESUME || this->op == RESUME_QUICK ||
	    this->op == RESUME_JIT || this->op == RESUME_INSTRUMENTED) && (this->instr >> 8) != 0;
	/* The generator frame whose entry the marker did not report (throw(), close()). */
	this->unentered = 0;
}

python$target:::function-entry
/MODEL == 3 && TSTATE_CURRENT/
{
	this->creates = (*(uint32_t *)copyin(this->code + CO_FLAGS, 4) & 0x2a0) &&
	    this->owner == 0;
	this->kind = this->creates ? "" : this->owner == 1 && this->at_yield ? "y>" : "->";
	this->previous = *(uint64_t *)copyin(this->frame + FRAME_PREVIOUS, 8);
	running[this->frame] = this->owner == 1;
}

python$target:::function-entry
/MODEL == 3 && TSTATE_CURRENT && this->previous && !running[this->previous] &&
    *(uint8_t *)copyin(this->previous + FRAME_OWNER, 1) == 1/
{
	this->unentered = this->previous;
}

python$target:::function-return
/MODEL == 3 && TSTATE_CURRENT/
{
	this->kind = this->exception ? "<!" : this->owner == 1 && this->at_yield ? "<y" : "<-";
}

python$target:::function-return
/MODEL == 3 && TSTATE_CURRENT && this->owner == 1 && !running[this->frame]/
{
	this->unentered = this->frame;
}

python$target:::function-return
/MODEL == 3 && TSTATE_CURRENT/
{
	running[this->frame] = 0;
}

python$target:::function-entry,
python$target:::function-return
/MODEL == 3 && this->unentered/
{
	running[this->unentered] = 1;
	this->ucode = *(uint64_t *)copyin(this->unentered + FRAME_CODE, 8) & ~(uint64_t)7;
	this->ufile = *(uint64_t *)copyin(this->ucode + CO_FILENAME, 8);
	this->uname = *(uint64_t *)copyin(this->ucode + CO_NAME, 8);
	this->ftext = (*(uint32_t *)copyin(this->ufile + STR_STATE, 4) & 0x40) ?
	    this->ufile + STR_ASCII_DATA : *(uint64_t *)copyin(this->ufile + STR_ASCII_DATA + 8, 8);
	this->ntext = (*(uint32_t *)copyin(this->uname + STR_STATE, 4) & 0x40) ?
	    this->uname + STR_ASCII_DATA : *(uint64_t *)copyin(this->uname + STR_ASCII_DATA + 8, 8);
	printf("%d %d %d %s %s %d %s\n", timestamp, pid, tid, "y>", copyinstr(this->ftext),
	    *(int *)copyin(this->ucode + CO_FIRSTLINENO, 4), copyinstr(this->ntext));
}

python$target:::function-entry,
python$target:::function-return
/this->kind != ""/
{
	printf("%d %d %d %s %s %d %s\n", timestamp, pid, tid, this->kind, copyinstr(arg0),
	    (int)arg2, copyinstr(arg1));
}

proc:::exec-success
{
	printf("%d %d %d %s %s %d %s\n", timestamp, pid, tid, "x>", execname, 0, "");
}

python$target:::[lf][iu]n[ec]*
/0/
{
}
