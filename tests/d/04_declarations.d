/* Declarations: typed globals, associative arrays, self and this, inlines. */
int counter;
uint64_t starts[int, string];
string last, first;
self int depth;
this uint32_t tmp;
unsigned long long big;
struct task_struct *task;
inline int LIMIT = 10 * 2;
inline string WHO = "root";
inline int TWICE = LIMIT * 2;

BEGIN
{
    counter = LIMIT;
    starts[pid, execname] = timestamp;
    last = WHO;
    first = last;
    self->depth = TWICE;
    this->tmp = 1;
    big = 1;
    trace(counter + starts[pid, execname] + this->tmp + big + self->depth);
    trace(first);
}
