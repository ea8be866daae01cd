/* readresult.d: read(2) results sorted into errors, end of file and data. */
#pragma D option quiet

syscall::read:return
{
	if ((int)arg0 < 0) {
		@result["error"] = count();
		@errnos[errno] = count();
	} else if (arg0 == 0) {
		@result["eof"] = count();
	} else {
		@result["data"] = count();
		@bytes = sum(arg0);
	}
}
