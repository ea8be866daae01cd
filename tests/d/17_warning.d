/* Reading a variable nothing assigns is a warning, once per variable. */
syscall::read:return
/self->start/
{
    @lat = quantize(timestamp - self->start);
    trace(this->never + this->never);
}
