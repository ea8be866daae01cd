# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_dtk_global_optspecs
    string join \n backend= color= o/output= no-header q/quiet h/help V/version
end

function __fish_dtk_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_dtk_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_dtk_using_subcommand
    set -l cmd (__fish_dtk_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c dtk -n "__fish_dtk_needs_command" -l backend -d 'Tracing engine: libdtrace where built in, else dtk\'s eBPF engine' -r -f -a "auto\t''
libdtrace\t''
linux\t''"
complete -c dtk -n "__fish_dtk_needs_command" -l color -d 'When to colour the output' -r -f -a "auto\t''
always\t''
never\t''"
complete -c dtk -n "__fish_dtk_needs_command" -s o -l output -d 'Output format: text for people, json for one JSON object per line, each with a "type" (the fields of each are in README.md, "JSON output")' -r -f -a "text\t''
json\t''"
complete -c dtk -n "__fish_dtk_needs_command" -l no-header -d 'Do not print the header line (pyflow: the flow\'s; its --summary table keeps its own)'
complete -c dtk -n "__fish_dtk_needs_command" -s q -l quiet -d 'Print no notices on stderr (errors and drop counts are still printed)'
complete -c dtk -n "__fish_dtk_needs_command" -s h -l help -d 'Print help'
complete -c dtk -n "__fish_dtk_needs_command" -s V -l version -d 'Print version'
complete -c dtk -n "__fish_dtk_needs_command" -f -a "pyflow" -d 'Python call flow: indented function entries and returns, per thread'
complete -c dtk -n "__fish_dtk_needs_command" -f -a "opens" -d 'Files opened, with the fd or the error, scoped by process, name or zone'
complete -c dtk -n "__fish_dtk_needs_command" -f -a "syscalls" -d 'System call counts, errors and latency, per call and per process'
complete -c dtk -n "__fish_dtk_needs_command" -f -a "run" -d 'Run a D script or one-liner through dtk\'s consumer'
complete -c dtk -n "__fish_dtk_needs_command" -f -a "list" -d 'List the bundled D scripts, one line each'
complete -c dtk -n "__fish_dtk_needs_command" -f -a "show" -d 'Print the exact D program a command would run, ready to paste into dtrace(1)'
complete -c dtk -n "__fish_dtk_needs_command" -f -a "generate" -d 'Write the man pages or a shell completion script, generated from this command line'
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -s p -l pid -d 'Trace this running process; tracing ends when it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -s c -l command -d 'Start this command (split like a shell would) and trace it until it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -l include -d 'Show only frames whose file matches REGEX (repeatable)' -r
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -l exclude -d 'Hide frames whose file matches REGEX (repeatable)' -r
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -l module -d 'Follow one package or module, even when it is installed in site-packages' -r
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -l top -d 'How many functions the summary lists' -r
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -l backend -d 'Tracing engine: libdtrace where built in, else dtk\'s eBPF engine' -r -f -a "auto\t''
libdtrace\t''
linux\t''"
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -l color -d 'When to colour the output' -r -f -a "auto\t''
always\t''
never\t''"
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -s o -l output -d 'Output format: text for people, json for one JSON object per line, each with a "type" (the fields of each are in README.md, "JSON output")' -r -f -a "text\t''
json\t''"
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -l no-follow -d 'With -c or -p: trace only that one process, not its children (by default the whole process tree is followed: children by fork, vfork and clone, theirs, across exec)'
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -s a -l all -d 'Show every frame, including the standard library, site-packages and frozen modules'
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -l elapsed -d 'Show the time since tracing started instead of the time since the previous event'
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -l summary -d 'At exit, print calls and inclusive and exclusive time per function (exclusive time includes the hidden library code the function called)'
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -l activate -d 'With -p on CPython 3.14 without its perf trampoline: turn the trampoline on in the process (sys.remote_exec runs code in it), and off again when tracing ends'
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -l no-header -d 'Do not print the header line (pyflow: the flow\'s; its --summary table keeps its own)'
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -s q -l quiet -d 'Print no notices on stderr (errors and drop counts are still printed)'
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -s h -l help -d 'Print help'
complete -c dtk -n "__fish_dtk_using_subcommand pyflow" -s V -l version -d 'Print version'
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s p -l pid -d 'Trace this running process; tracing ends when it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s c -l command -d 'Start this command (split like a shell would) and trace it until it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s n -l name -d 'Only processes whose name is exactly NAME' -r
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s N -l name-regex -d 'Only processes whose name matches REGEX' -r
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s z -l zone -d 'Only processes in ZONE (illumos: the zonename; Linux: a cgroup name or path, with its descendants)' -r
complete -c dtk -n "__fish_dtk_using_subcommand opens" -l path -d 'Only paths that match REGEX' -r
complete -c dtk -n "__fish_dtk_using_subcommand opens" -l count -d 'Instead of events, print at exit the number of opens per path or per process' -r -f -a "path\t''
process\t''"
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s d -l duration -d 'Stop after SECONDS' -r
complete -c dtk -n "__fish_dtk_using_subcommand opens" -l backend -d 'Tracing engine: libdtrace where built in, else dtk\'s eBPF engine' -r -f -a "auto\t''
libdtrace\t''
linux\t''"
complete -c dtk -n "__fish_dtk_using_subcommand opens" -l color -d 'When to colour the output' -r -f -a "auto\t''
always\t''
never\t''"
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s o -l output -d 'Output format: text for people, json for one JSON object per line, each with a "type" (the fields of each are in README.md, "JSON output")' -r -f -a "text\t''
json\t''"
complete -c dtk -n "__fish_dtk_using_subcommand opens" -l no-follow -d 'With -c or -p: trace only that one process, not its children (by default the whole process tree is followed: children by fork, vfork and clone, theirs, across exec)'
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s Z -l show-zone -d 'Show the ZONE column'
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s x -l failed -d 'Only opens that failed'
complete -c dtk -n "__fish_dtk_using_subcommand opens" -l flags -d 'Add the FLAGS column: the open flags (O_RDONLY|O_CLOEXEC…)'
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s T -l timestamp -d 'Add the TIME column: the wall clock'
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s e -l elapsed -d 'Add the ELAPSED(s) column: the time since tracing started'
complete -c dtk -n "__fish_dtk_using_subcommand opens" -l full -d 'Resolve relative paths against the process\'s working directory (or openat\'s directory); a path that cannot be (the process has gone) is shown as given and marked "(unresolved)"'
complete -c dtk -n "__fish_dtk_using_subcommand opens" -l no-header -d 'Do not print the header line (pyflow: the flow\'s; its --summary table keeps its own)'
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s q -l quiet -d 'Print no notices on stderr (errors and drop counts are still printed)'
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s h -l help -d 'Print help'
complete -c dtk -n "__fish_dtk_using_subcommand opens" -s V -l version -d 'Print version'
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s p -l pid -d 'Trace this running process; tracing ends when it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s c -l command -d 'Start this command (split like a shell would) and trace it until it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s n -l name -d 'Only processes whose name is exactly NAME' -r
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s z -l zone -d 'Only processes in ZONE (Linux: a cgroup name or path, with its descendants)' -r
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s T -l top -d 'Show the top N rows' -r
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -l sort -d 'Sort rows by this column (time implies -L, errors implies -e)' -r -f -a "count\t''
time\t''
errors\t''
name\t''"
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s i -l interval -d 'Print a table every SECONDS (whole seconds)' -r
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s d -l duration -d 'Stop after SECONDS' -r
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -l hist -d 'Latency histogram of one system call, in DTrace\'s quantize format' -r
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -l backend -d 'Tracing engine: libdtrace where built in, else dtk\'s eBPF engine' -r -f -a "auto\t''
libdtrace\t''
linux\t''"
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -l color -d 'When to colour the output' -r -f -a "auto\t''
always\t''
never\t''"
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s o -l output -d 'Output format: text for people, json for one JSON object per line, each with a "type" (the fields of each are in README.md, "JSON output")' -r -f -a "text\t''
json\t''"
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -l no-follow -d 'With -c or -p: trace only that one process, not its children (by default the whole process tree is followed: children by fork, vfork and clone, theirs, across exec)'
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s P -l by-process -d 'Count by process (PID, COMM) as well as by call'
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s L -l latency -d 'Add total and average latency, from entry to return per thread'
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s e -l errors -d 'Add errors per call, with the errno names and counts'
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -l live -d 'Full-screen view of the top calls and processes (counts, rates, latency and errors), refreshed every second'
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -l no-header -d 'Do not print the header line (pyflow: the flow\'s; its --summary table keeps its own)'
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s q -l quiet -d 'Print no notices on stderr (errors and drop counts are still printed)'
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s h -l help -d 'Print help'
complete -c dtk -n "__fish_dtk_using_subcommand syscalls" -s V -l version -d 'Print version'
complete -c dtk -n "__fish_dtk_using_subcommand run" -s p -l pid -d 'Trace this running process; tracing ends when it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s c -l command -d 'Start this command (split like a shell would) and trace it until it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s s -l script -d 'The D script file; every operand is then a macro argument ($1, $2, …)' -r -F
complete -c dtk -n "__fish_dtk_using_subcommand run" -s n -l program -d 'A D program given on the command line (repeatable: clauses are joined in order). With -n, every operand is a macro argument ($1, $2, …)' -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s P -l provider -d 'Probes of this provider, as `dtrace -P`: PROVIDER[[/predicate/]{action}] (repeatable)' -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s m -l module -d 'Probes in this module, as `dtrace -m`: [PROVIDER:]MODULE[{action}] (repeatable)' -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s f -l function -d 'Probes of this function, as `dtrace -f`: [[PROVIDER:]MODULE:]FUNCTION[{action}] (repeatable)' -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s b -l bufsize -d 'The principal buffer\'s size, such as 4m (`-x bufsize=SIZE`)' -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s x -l option -d 'Set a D option, as `#pragma D option` does (repeatable)' -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s D -d 'With -C: define a preprocessor macro (repeatable)' -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s U -d 'With -C: undefine a preprocessor macro (repeatable)' -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s I -d 'With -C: a directory to search for #include files (repeatable)' -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s i -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s L -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -s X -r
complete -c dtk -n "__fish_dtk_using_subcommand run" -l backend -d 'Tracing engine: libdtrace where built in, else dtk\'s eBPF engine' -r -f -a "auto\t''
libdtrace\t''
linux\t''"
complete -c dtk -n "__fish_dtk_using_subcommand run" -l color -d 'When to colour the output' -r -f -a "auto\t''
always\t''
never\t''"
complete -c dtk -n "__fish_dtk_using_subcommand run" -s o -l output -d 'Output format: text for people, json for one JSON object per line, each with a "type" (the fields of each are in README.md, "JSON output")' -r -f -a "text\t''
json\t''"
complete -c dtk -n "__fish_dtk_using_subcommand run" -s l -l list -d 'List the probes that the descriptions match (-n DESC, or the script\'s) instead of tracing'
complete -c dtk -n "__fish_dtk_using_subcommand run" -s e -l compile-only -d 'Compile the program and match its probes, then exit without tracing'
complete -c dtk -n "__fish_dtk_using_subcommand run" -s Z -l zdefs -d 'Permit probe descriptions that match no probes'
complete -c dtk -n "__fish_dtk_using_subcommand run" -s w -l destructive -d 'Permit destructive actions such as system() and raise() (`-x destructive`)'
complete -c dtk -n "__fish_dtk_using_subcommand run" -s F -l flowindent -d 'Indent function entries and returns (`-x flowindent`)'
complete -c dtk -n "__fish_dtk_using_subcommand run" -l dump-bpf -d 'Print the generated eBPF programs on stderr before tracing (linux back end)'
complete -c dtk -n "__fish_dtk_using_subcommand run" -s C -d 'Run the C preprocessor (cpp) over the program first, as dtrace -C does'
complete -c dtk -n "__fish_dtk_using_subcommand run" -s G
complete -c dtk -n "__fish_dtk_using_subcommand run" -s a
complete -c dtk -n "__fish_dtk_using_subcommand run" -s A
complete -c dtk -n "__fish_dtk_using_subcommand run" -s S
complete -c dtk -n "__fish_dtk_using_subcommand run" -s v
complete -c dtk -n "__fish_dtk_using_subcommand run" -s H
complete -c dtk -n "__fish_dtk_using_subcommand run" -l no-header -d 'Do not print the header line (pyflow: the flow\'s; its --summary table keeps its own)'
complete -c dtk -n "__fish_dtk_using_subcommand run" -s q -l quiet -d 'Print no notices on stderr (errors and drop counts are still printed)'
complete -c dtk -n "__fish_dtk_using_subcommand run" -s h -l help -d 'Print help'
complete -c dtk -n "__fish_dtk_using_subcommand run" -s V -l version -d 'Print version'
complete -c dtk -n "__fish_dtk_using_subcommand list" -l backend -d 'Tracing engine: libdtrace where built in, else dtk\'s eBPF engine' -r -f -a "auto\t''
libdtrace\t''
linux\t''"
complete -c dtk -n "__fish_dtk_using_subcommand list" -l color -d 'When to colour the output' -r -f -a "auto\t''
always\t''
never\t''"
complete -c dtk -n "__fish_dtk_using_subcommand list" -s o -l output -d 'Output format: text for people, json for one JSON object per line, each with a "type" (the fields of each are in README.md, "JSON output")' -r -f -a "text\t''
json\t''"
complete -c dtk -n "__fish_dtk_using_subcommand list" -l no-header -d 'Do not print the header line (pyflow: the flow\'s; its --summary table keeps its own)'
complete -c dtk -n "__fish_dtk_using_subcommand list" -s q -l quiet -d 'Print no notices on stderr (errors and drop counts are still printed)'
complete -c dtk -n "__fish_dtk_using_subcommand list" -s h -l help -d 'Print help'
complete -c dtk -n "__fish_dtk_using_subcommand list" -s V -l version -d 'Print version'
complete -c dtk -n "__fish_dtk_using_subcommand show; and not __fish_seen_subcommand_from pyflow opens syscalls" -l backend -d 'Tracing engine: libdtrace where built in, else dtk\'s eBPF engine' -r -f -a "auto\t''
libdtrace\t''
linux\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and not __fish_seen_subcommand_from pyflow opens syscalls" -l color -d 'When to colour the output' -r -f -a "auto\t''
always\t''
never\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and not __fish_seen_subcommand_from pyflow opens syscalls" -s o -l output -d 'Output format: text for people, json for one JSON object per line, each with a "type" (the fields of each are in README.md, "JSON output")' -r -f -a "text\t''
json\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and not __fish_seen_subcommand_from pyflow opens syscalls" -l no-header -d 'Do not print the header line (pyflow: the flow\'s; its --summary table keeps its own)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and not __fish_seen_subcommand_from pyflow opens syscalls" -s q -l quiet -d 'Print no notices on stderr (errors and drop counts are still printed)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and not __fish_seen_subcommand_from pyflow opens syscalls" -s h -l help -d 'Print help'
complete -c dtk -n "__fish_dtk_using_subcommand show; and not __fish_seen_subcommand_from pyflow opens syscalls" -s V -l version -d 'Print version'
complete -c dtk -n "__fish_dtk_using_subcommand show; and not __fish_seen_subcommand_from pyflow opens syscalls" -f -a "pyflow" -d 'Print the D program of `dtk pyflow` with these options'
complete -c dtk -n "__fish_dtk_using_subcommand show; and not __fish_seen_subcommand_from pyflow opens syscalls" -f -a "opens" -d 'Print the D program of `dtk opens` with these options'
complete -c dtk -n "__fish_dtk_using_subcommand show; and not __fish_seen_subcommand_from pyflow opens syscalls" -f -a "syscalls" -d 'Print the D program of `dtk syscalls` with these options'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -s p -l pid -d 'Trace this running process; tracing ends when it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -s c -l command -d 'Start this command (split like a shell would) and trace it until it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -l include -d 'Show only frames whose file matches REGEX (repeatable)' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -l exclude -d 'Hide frames whose file matches REGEX (repeatable)' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -l module -d 'Follow one package or module, even when it is installed in site-packages' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -l top -d 'How many functions the summary lists' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -l backend -d 'Tracing engine: libdtrace where built in, else dtk\'s eBPF engine' -r -f -a "auto\t''
libdtrace\t''
linux\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -l color -d 'When to colour the output' -r -f -a "auto\t''
always\t''
never\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -s o -l output -d 'Output format: text for people, json for one JSON object per line, each with a "type" (the fields of each are in README.md, "JSON output")' -r -f -a "text\t''
json\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -l no-follow -d 'With -c or -p: trace only that one process, not its children (by default the whole process tree is followed: children by fork, vfork and clone, theirs, across exec)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -s a -l all -d 'Show every frame, including the standard library, site-packages and frozen modules'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -l elapsed -d 'Show the time since tracing started instead of the time since the previous event'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -l summary -d 'At exit, print calls and inclusive and exclusive time per function (exclusive time includes the hidden library code the function called)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -l activate -d 'With -p on CPython 3.14 without its perf trampoline: turn the trampoline on in the process (sys.remote_exec runs code in it), and off again when tracing ends'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -l no-header -d 'Do not print the header line (pyflow: the flow\'s; its --summary table keeps its own)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -s q -l quiet -d 'Print no notices on stderr (errors and drop counts are still printed)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -s h -l help -d 'Print help'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from pyflow" -s V -l version -d 'Print version'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s p -l pid -d 'Trace this running process; tracing ends when it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s c -l command -d 'Start this command (split like a shell would) and trace it until it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s n -l name -d 'Only processes whose name is exactly NAME' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s N -l name-regex -d 'Only processes whose name matches REGEX' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s z -l zone -d 'Only processes in ZONE (illumos: the zonename; Linux: a cgroup name or path, with its descendants)' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -l path -d 'Only paths that match REGEX' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -l count -d 'Instead of events, print at exit the number of opens per path or per process' -r -f -a "path\t''
process\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s d -l duration -d 'Stop after SECONDS' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -l backend -d 'Tracing engine: libdtrace where built in, else dtk\'s eBPF engine' -r -f -a "auto\t''
libdtrace\t''
linux\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -l color -d 'When to colour the output' -r -f -a "auto\t''
always\t''
never\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s o -l output -d 'Output format: text for people, json for one JSON object per line, each with a "type" (the fields of each are in README.md, "JSON output")' -r -f -a "text\t''
json\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -l no-follow -d 'With -c or -p: trace only that one process, not its children (by default the whole process tree is followed: children by fork, vfork and clone, theirs, across exec)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s Z -l show-zone -d 'Show the ZONE column'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s x -l failed -d 'Only opens that failed'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -l flags -d 'Add the FLAGS column: the open flags (O_RDONLY|O_CLOEXEC…)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s T -l timestamp -d 'Add the TIME column: the wall clock'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s e -l elapsed -d 'Add the ELAPSED(s) column: the time since tracing started'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -l full -d 'Resolve relative paths against the process\'s working directory (or openat\'s directory); a path that cannot be (the process has gone) is shown as given and marked "(unresolved)"'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -l no-header -d 'Do not print the header line (pyflow: the flow\'s; its --summary table keeps its own)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s q -l quiet -d 'Print no notices on stderr (errors and drop counts are still printed)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s h -l help -d 'Print help'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from opens" -s V -l version -d 'Print version'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s p -l pid -d 'Trace this running process; tracing ends when it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s c -l command -d 'Start this command (split like a shell would) and trace it until it exits' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s n -l name -d 'Only processes whose name is exactly NAME' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s z -l zone -d 'Only processes in ZONE (Linux: a cgroup name or path, with its descendants)' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s T -l top -d 'Show the top N rows' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -l sort -d 'Sort rows by this column (time implies -L, errors implies -e)' -r -f -a "count\t''
time\t''
errors\t''
name\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s i -l interval -d 'Print a table every SECONDS (whole seconds)' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s d -l duration -d 'Stop after SECONDS' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -l hist -d 'Latency histogram of one system call, in DTrace\'s quantize format' -r
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -l backend -d 'Tracing engine: libdtrace where built in, else dtk\'s eBPF engine' -r -f -a "auto\t''
libdtrace\t''
linux\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -l color -d 'When to colour the output' -r -f -a "auto\t''
always\t''
never\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s o -l output -d 'Output format: text for people, json for one JSON object per line, each with a "type" (the fields of each are in README.md, "JSON output")' -r -f -a "text\t''
json\t''"
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -l no-follow -d 'With -c or -p: trace only that one process, not its children (by default the whole process tree is followed: children by fork, vfork and clone, theirs, across exec)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s P -l by-process -d 'Count by process (PID, COMM) as well as by call'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s L -l latency -d 'Add total and average latency, from entry to return per thread'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s e -l errors -d 'Add errors per call, with the errno names and counts'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -l live -d 'Full-screen view of the top calls and processes (counts, rates, latency and errors), refreshed every second'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -l no-header -d 'Do not print the header line (pyflow: the flow\'s; its --summary table keeps its own)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s q -l quiet -d 'Print no notices on stderr (errors and drop counts are still printed)'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s h -l help -d 'Print help'
complete -c dtk -n "__fish_dtk_using_subcommand show; and __fish_seen_subcommand_from syscalls" -s V -l version -d 'Print version'
complete -c dtk -n "__fish_dtk_using_subcommand generate" -l dir -d 'Write the files into DIR (man: dtk.1 and one page per subcommand) instead of printing the main one on stdout' -r -F
complete -c dtk -n "__fish_dtk_using_subcommand generate" -l backend -d 'Tracing engine: libdtrace where built in, else dtk\'s eBPF engine' -r -f -a "auto\t''
libdtrace\t''
linux\t''"
complete -c dtk -n "__fish_dtk_using_subcommand generate" -l color -d 'When to colour the output' -r -f -a "auto\t''
always\t''
never\t''"
complete -c dtk -n "__fish_dtk_using_subcommand generate" -s o -l output -d 'Output format: text for people, json for one JSON object per line, each with a "type" (the fields of each are in README.md, "JSON output")' -r -f -a "text\t''
json\t''"
complete -c dtk -n "__fish_dtk_using_subcommand generate" -l no-header -d 'Do not print the header line (pyflow: the flow\'s; its --summary table keeps its own)'
complete -c dtk -n "__fish_dtk_using_subcommand generate" -s q -l quiet -d 'Print no notices on stderr (errors and drop counts are still printed)'
complete -c dtk -n "__fish_dtk_using_subcommand generate" -s h -l help -d 'Print help'
complete -c dtk -n "__fish_dtk_using_subcommand generate" -s V -l version -d 'Print version'
