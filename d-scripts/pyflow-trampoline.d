#!/usr/sbin/dtrace -s
/*
 * pyflow-trampoline.d: Python function entries and returns on CPython 3.12 to 3.14, which
 * have no function markers, through the perf trampoline.
 *
 * Traces:     _PyEval_EvalFrameDefault, entry and return. With the perf trampoline active
 *             (python -X perf, PYTHONPERFSUPPORT=1, or sys.activate_stack_trampoline("perf")),
 *             every Python call enters it once, and returns from it once.
 * Providers:  pid.
 * Parameters: $target, the interpreter's process id (dtrace -p PID or -c CMD); and the
 *             layout of the interpreter's structures, as inline constants below. dtk sets them
 *             for the interpreter's version; the values here are CPython 3.12's on 64-bit
 *             Linux.
 *   FRAME_CODE      offset of the code object in _PyInterpreterFrame (arg1 at entry).
 *   CODE_TAG_BITS   low bits of that pointer that tag it (3.14's stack references).
 *   FRAME_OWNER     offset of the frame's owner (0: the thread, 1: a generator).
 *   CO_FLAGS, CO_FILENAME, CO_NAME, CO_FIRSTLINENO   offsets in PyCodeObject.
 *   STR_STATE       offset of a str's state bits (bit 6: ASCII).
 *   STR_ASCII_DATA  where an ASCII str's text starts (sizeof (PyASCIIObject)).
 *   STR_UTF8        offset of a non-ASCII str's cached UTF-8 pointer.
 *   MAX_DEPTH       the deepest nesting of a thread's calls followed; deeper calls are
 *                   counted in @too_deep and not shown. dtk gives 100000 where the return
 *                   probe is a uprobe on each of the evaluator's return instructions, and 64
 *                   where it is a uretprobe (the kernel places those on at most 64 nested
 *                   calls of a thread).
 *   TS_CFRAME       offset of PyThreadState.cframe (3.12), or 0 where the thread state holds
 *                   the current frame itself (3.13 and later).
 *   CURRENT_FRAME   offset of current_frame in _PyCFrame (3.12) or PyThreadState (3.13+).
 *   GEN_IFRAME      offset of the frame in a generator (or coroutine) object, gi_iframe.
 *   GEN_FRAME_STATE offset of gi_frame_state in it; a suspended generator's is negative.
 * Output:     `following pid ppid execname` at the first event of each process, then one
 *   line per event:
 *   timestamp pid tid kind file line function
 *   where kind is -> for an entry, <- for a return, <! for a return by an exception (the
 *   evaluator returns NULL), <y for a generator's (or coroutine's) return by yield or await,
 *   and y> for its entry resuming after one. Every kind gives the def line. An exec prints
 *   x> with the new program's name as the file, line 0 and no function: the program's calls
 *   end there, unreturned, and a new program's flow begins.
 *   dtk reads these lines as the contract in src/commands/pyflow/mod.rs (CONTRACT)
 *   declares them; a unit test fails when the two disagree.
 *
 * A return cannot read the frame that returns from the evaluator's arguments: the thread
 * keeps the frame it runs in self->frame, set at each entry, and set again at each return
 * from the thread state's current frame, which is then the caller's. A frame whose
 * generator is suspended when the evaluator returns yielded; its frame (inside the
 * generator object) is noted, and its next entry is a resume. Making a generator clears the
 * note of its frame, since a new generator may take the memory of one that was dropped
 * while suspended.
 *
 * Calling a generator, coroutine or async generator function runs its frame only up to
 * RETURN_GENERATOR, which makes the generator; its body runs later, each time the generator
 * is resumed, in a frame the generator owns. That first short run is not a call of the
 * body (sys.setprofile does not report it either), so it is not shown.
 */

#pragma D option quiet
#pragma D option switchrate=20hz
#pragma D option bufsize=64m

inline int FRAME_CODE = 0;
inline int CODE_TAG_BITS = 0;
inline int FRAME_OWNER = 70;
inline int CO_FLAGS = 48;
inline int CO_FILENAME = 112;
inline int CO_NAME = 120;
inline int CO_FIRSTLINENO = 68;
inline int STR_STATE = 32;
inline int STR_ASCII_DATA = 40;
inline int STR_UTF8 = 48;
inline int MAX_DEPTH = 64;
inline int TS_CFRAME = 56;
inline int CURRENT_FRAME = 0;
inline int GEN_IFRAME = 72;
inline int GEN_FRAME_STATE = 67;

/* Processes announced. */
int announced[int];

/* Frames (by address) of generators suspended at a yield. */
int suspended[uint64_t];

self int depth;
self uint64_t tstate;
self uint64_t frame;
this int recorded;
this int resumed;
this int yielded;

/*
 * The first event of each process: `following PID PPID EXECNAME`, so that the processes
 * picked up can be announced.
 */
pid$target::_PyEval_EvalFrameDefault:entry
/!announced[pid]/
{
	announced[pid] = 1;
	printf("following %d %d %s\n", pid, ppid, execname);
}

/* A clause-local variable is undefined until this firing sets it: clear the flags first. */
pid$target::_PyEval_EvalFrameDefault:entry
{
	this->recorded = 0;
	this->resumed = 0;
	self->tstate = arg0;
	self->frame = arg1;
}

pid$target::_PyEval_EvalFrameDefault:entry
/self->depth >= MAX_DEPTH/
{
	@too_deep = count();
}

pid$target::_PyEval_EvalFrameDefault:entry
/self->depth < MAX_DEPTH/
{
	this->code = *(uint64_t *)copyin(arg1 + FRAME_CODE, 8) & ~(uint64_t)CODE_TAG_BITS;
	this->file = *(uint64_t *)copyin(this->code + CO_FILENAME, 8);
	this->name = *(uint64_t *)copyin(this->code + CO_NAME, 8);
	this->ftext = (*(uint32_t *)copyin(this->file + STR_STATE, 4) & 0x40) ?
	    this->file + STR_ASCII_DATA : *(uint64_t *)copyin(this->file + STR_UTF8, 8);
	this->ntext = (*(uint32_t *)copyin(this->name + STR_STATE, 4) & 0x40) ?
	    this->name + STR_ASCII_DATA : *(uint64_t *)copyin(this->name + STR_UTF8, 8);
	/* CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR, in a frame the thread owns. */
	this->creates = (*(uint32_t *)copyin(this->code + CO_FLAGS, 4) & 0x2a0) &&
	    *(uint8_t *)copyin(arg1 + FRAME_OWNER, 1) == 0;
	self->depth++;
	files[tid, self->depth] = copyinstr(this->ftext);
	names[tid, self->depth] = copyinstr(this->ntext);
	lines[tid, self->depth] = *(int *)copyin(this->code + CO_FIRSTLINENO, 4);
	hidden[tid, self->depth] = this->creates;
	frames[tid, self->depth] = arg1;
	owned[tid, self->depth] = *(uint8_t *)copyin(arg1 + FRAME_OWNER, 1) == 1;
	this->resumed = owned[tid, self->depth] && suspended[arg1];
	suspended[arg1] = 0;
	this->recorded = 1;
}

pid$target::_PyEval_EvalFrameDefault:entry
/this->recorded && !hidden[tid, self->depth]/
{
	printf("%d %d %d %s %s %d %s\n", timestamp, pid, tid, this->resumed ? "y>" : "->",
	    files[tid, self->depth], lines[tid, self->depth], names[tid, self->depth]);
}

pid$target::_PyEval_EvalFrameDefault:return
{
	this->yielded = 0;
}

/* A generator's frame returning: did it yield? Not if it returned NULL (an exception); and
   not known when deeper calls went past MAX_DEPTH: their returns were not seen, so
   self->frame is not this frame. */
pid$target::_PyEval_EvalFrameDefault:return
/self->depth && owned[tid, self->depth] && frames[tid, self->depth] == self->frame/
{
	this->state = *(int8_t *)copyin(self->frame - GEN_IFRAME + GEN_FRAME_STATE, 1);
	this->yielded = arg1 && this->state < 0;
	suspended[self->frame] = this->yielded;
}

/* A generator made: its frame is a new one, whatever frame was there before. */
pid$target::_PyEval_EvalFrameDefault:return
/self->depth && hidden[tid, self->depth] && arg1/
{
	suspended[arg1 + GEN_IFRAME] = 0;
}

pid$target::_PyEval_EvalFrameDefault:return
/self->depth && !hidden[tid, self->depth]/
{
	printf("%d %d %d %s %s %d %s\n", timestamp, pid, tid,
	    !arg1 ? "<!" : this->yielded ? "<y" : "<-", files[tid, self->depth],
	    lines[tid, self->depth], names[tid, self->depth]);
}

pid$target::_PyEval_EvalFrameDefault:return
/self->depth/
{
	files[tid, self->depth] = 0;
	names[tid, self->depth] = 0;
	lines[tid, self->depth] = 0;
	hidden[tid, self->depth] = 0;
	frames[tid, self->depth] = 0;
	owned[tid, self->depth] = 0;
	self->depth--;
}

/* The frame the thread runs now: the caller's. */
pid$target::_PyEval_EvalFrameDefault:return
{
	this->cframe = TS_CFRAME ? *(uint64_t *)copyin(self->tstate + TS_CFRAME, 8) : self->tstate;
	self->frame = *(uint64_t *)copyin(this->cframe + CURRENT_FRAME, 8);
}

/* An exec ends the program's calls without returns: the thread starts again at depth 0. */
proc:::exec-success
/pid == $target/
{
	self->depth = 0;
	printf("%d %d %d %s %s %d %s\n", timestamp, pid, tid, "x>", execname, 0, "");
}
