"""Plain functions whose text mentions yield: a generator is told by its code's flags, never by
its text."""


def fetch():
    """Fetch the rows and yield nothing: this is a plain function."""
    return 1


def helper():
    return 2


def describe():
    """Would yield a description."""
    helper()
    return "yield"


def main():
    fetch()
    fetch()
    describe()
    describe()


main()
