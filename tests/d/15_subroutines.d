/* Subroutines: stacks, copyin, copyinstr and the string functions. */
syscall::openat:entry
{
    self->path = copyinstr(arg1);
    self->short = copyinstr(arg1, 32);
    self->buf = copyin(arg1, 8);
    this->len = strlen(self->path);
    this->joined = strjoin(self->path, "/x");
    this->sub = substr(self->path, 1);
    this->sub3 = substr(self->path, 1, 4);
    this->found = strstr(self->path, "lib");
    this->at = index(self->path, "/");
    this->at3 = index(self->path, "/", 2);
    this->last = rindex(self->path, "/");
    this->base = basename(self->path);
    this->dir = dirname(self->path);
    this->num = lltostr(pid);
    this->hex = lltostr(pid, 16);
    this->lower = tolower(execname);
    this->upper = toupper(execname);
    this->kid = progenyof(1);
    trace(stack());
    trace(stack(5));
    trace(ustack());
    trace(ustack(5, 100));
    printf("%s %s %s %s %s %s %s %s %s %d %d %d %d %d\n", this->joined, this->sub,
        this->sub3, this->found, this->base, this->dir, this->num, this->hex, this->lower,
        this->len, this->at, this->at3, this->last, this->kid);
    printf("%s %s %p\n", self->short, this->upper, self->buf);
}
