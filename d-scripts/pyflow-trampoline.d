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
 *   MAX_DEPTH       the kernel places a return probe on at most this many nested calls of a
 *                   thread; deeper calls are counted in @too_deep and not shown.
 * Output:     one line per event:
 *   timestamp pid tid kind file line function
 *   where kind is -> for an entry, <- for a return, and <! for a return by an exception
 *   (the evaluator returns NULL). Both kinds of return give the def line.
 *
 * Calling a generator, coroutine or async generator function runs its frame only up to
 * RETURN_GENERATOR, which makes the generator; its body runs later, each time the generator
 * is resumed, in a frame the generator owns. That first short run is not a call of the
 * body (sys.setprofile does not report it either), so it is not shown.
 */

#pragma D option quiet
#pragma D option switchrate=10hz
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

self int depth;
this int recorded;

/* A clause-local variable is undefined until this firing sets it: clear the flag first. */
pid$target::_PyEval_EvalFrameDefault:entry
{
	this->recorded = 0;
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
	this->recorded = 1;
}

pid$target::_PyEval_EvalFrameDefault:entry
/this->recorded && !hidden[tid, self->depth]/
{
	printf("%d %d %d -> %s %d %s\n", timestamp, pid, tid, files[tid, self->depth],
	    lines[tid, self->depth], names[tid, self->depth]);
}

pid$target::_PyEval_EvalFrameDefault:return
/self->depth && !hidden[tid, self->depth] && arg1/
{
	printf("%d %d %d <- %s %d %s\n", timestamp, pid, tid, files[tid, self->depth],
	    lines[tid, self->depth], names[tid, self->depth]);
}

pid$target::_PyEval_EvalFrameDefault:return
/self->depth && !hidden[tid, self->depth] && !arg1/
{
	printf("%d %d %d <! %s %d %s\n", timestamp, pid, tid, files[tid, self->depth],
	    lines[tid, self->depth], names[tid, self->depth]);
}

pid$target::_PyEval_EvalFrameDefault:return
/self->depth/
{
	files[tid, self->depth] = 0;
	names[tid, self->depth] = 0;
	lines[tid, self->depth] = 0;
	hidden[tid, self->depth] = 0;
	self->depth--;
}
