/* The last statement of a body may omit its `;`; the others may not. */
BEGIN
{
    self->t = timestamp
    trace(self->t)
}
