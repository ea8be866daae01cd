/* Assignment operators and ++/--, on globals, thread-locals and clause-locals. */
BEGIN
{
    x = 1;
    x += 2;
    x -= 1;
    x *= 3;
    x /= 2;
    x %= 5;
    x &= 0xf;
    x |= 0x10;
    x ^= 1;
    x <<= 2;
    x >>= 1;
    self->n++;
    ++self->n;
    this->m = x--;
    --x;
    y = z = 4;
    trace(this->m + y + z);
}
