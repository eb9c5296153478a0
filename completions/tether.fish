# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tether_global_optspecs
    string join \n socket= h/help V/version
end

function __fish_tether_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tether_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tether_using_subcommand
    set -l cmd (__fish_tether_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tether -n "__fish_tether_needs_command" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_needs_command" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_needs_command" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_needs_command" -f -a "status" -d 'Show the daemon\'s mode, socket, store and who you are to it'
complete -c tether -n "__fish_tether_needs_command" -f -a "profile" -d 'Add, list, show and remove server profiles'
complete -c tether -n "__fish_tether_needs_command" -f -a "exec" -d 'Run a command on a profile\'s server; its exit status is tether\'s'
complete -c tether -n "__fish_tether_needs_command" -f -a "shell" -d 'Open an interactive terminal session (a login shell, or COMMAND on a pseudo-terminal); `~.` at the start of a line disconnects'
complete -c tether -n "__fish_tether_needs_command" -f -a "cp" -d 'Copy files to or from a server: upload LOCAL... NAME:PATH, download NAME:PATH... LOCAL; `-` is stdin or stdout'
complete -c tether -n "__fish_tether_needs_command" -f -a "files" -d 'One file operation on a server: ls, stat, mkdir, rm, rmdir, mv, chmod, ln -s (also as `tether sftp`)'
complete -c tether -n "__fish_tether_needs_command" -f -a "grant" -d 'Who may use which profile, and how (root and profile owners)'
complete -c tether -n "__fish_tether_needs_command" -f -a "action" -d 'Named actions: argv templates that cron jobs and restricted users run'
complete -c tether -n "__fish_tether_needs_command" -f -a "run" -d 'Run a named action: tether run PROFILE ACTION [key=value ...]'
complete -c tether -n "__fish_tether_needs_command" -f -a "mfa" -d 'TOTP enrolment and status'
complete -c tether -n "__fish_tether_needs_command" -f -a "login" -d 'Open an MFA session for this login session with a TOTP or backup code'
complete -c tether -n "__fish_tether_needs_command" -f -a "logout" -d 'End this login session\'s MFA session'
complete -c tether -n "__fish_tether_needs_command" -f -a "whoami" -d 'Who the daemon sees: uid, groups, MFA state, grants'
complete -c tether -n "__fish_tether_needs_command" -f -a "audit" -d 'The audit trail: who used which credential for what, and when'
complete -c tether -n "__fish_tether_needs_command" -f -a "session" -d 'List and close the daemon\'s live SSH connections'
complete -c tether -n "__fish_tether_needs_command" -f -a "seal" -d 'Root: wipe the daemon\'s master key from memory and close every SSH connection (as SIGUSR1 does); restart tetherd to use it again'
complete -c tether -n "__fish_tether_needs_command" -f -a "completions" -d 'Print a shell completion script to stdout (edits no file)'
complete -c tether -n "__fish_tether_needs_command" -f -a "man" -d 'Print the tether(1) manual page (roff) to stdout'
complete -c tether -n "__fish_tether_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand status" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand status" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand status" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand status" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand profile; and not __fish_seen_subcommand_from add list show remove hostkey trust set help" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand profile; and not __fish_seen_subcommand_from add list show remove hostkey trust set help" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand profile; and not __fish_seen_subcommand_from add list show remove hostkey trust set help" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand profile; and not __fish_seen_subcommand_from add list show remove hostkey trust set help" -f -a "add" -d 'Add a server profile: pins its host key and checks the credential authenticates before storing anything'
complete -c tether -n "__fish_tether_using_subcommand profile; and not __fish_seen_subcommand_from add list show remove hostkey trust set help" -f -a "list" -d 'List profiles'
complete -c tether -n "__fish_tether_using_subcommand profile; and not __fish_seen_subcommand_from add list show remove hostkey trust set help" -f -a "show" -d 'Show one profile (never its secret)'
complete -c tether -n "__fish_tether_using_subcommand profile; and not __fish_seen_subcommand_from add list show remove hostkey trust set help" -f -a "remove" -d 'Remove a profile and its sealed secret; asks first on a terminal, and says when the profile holds the only copy of a private key'
complete -c tether -n "__fish_tether_using_subcommand profile; and not __fish_seen_subcommand_from add list show remove hostkey trust set help" -f -a "hostkey" -d 'Show the host key(s) pinned for a profile'
complete -c tether -n "__fish_tether_using_subcommand profile; and not __fish_seen_subcommand_from add list show remove hostkey trust set help" -f -a "trust" -d 'Re-learn a server\'s changed host key, with explicit consent: shows the old and new fingerprints and asks, or takes --host-key without a terminal'
complete -c tether -n "__fish_tether_using_subcommand profile; and not __fish_seen_subcommand_from add list show remove hostkey trust set help" -f -a "set" -d 'Change a profile\'s fields or rotate its secret; the result must log in before it is stored. Changing where the secret goes (host, port, user, host key) needs root or a new credential in the same command'
complete -c tether -n "__fish_tether_using_subcommand profile; and not __fish_seen_subcommand_from add list show remove hostkey trust set help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l host -d 'Server host name or address' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l port -d 'Server SSH port' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l user -d 'Remote user name' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l key-file -d 'Private key file (OpenSSH or PEM), read with your own permissions and sent once; tetherd stores it sealed' -r -F
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l host-key -d 'Trust only the host key with this fingerprint (as `ssh-keygen -lf` prints it)' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l connect-timeout -d 'Seconds to wait for the connection and the SSH handshake [default: the daemon\'s ssh.connect_timeout_secs]' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l keepalive -d 'Seconds of silence before a keepalive [default: the daemon\'s ssh.keepalive_secs]' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l key-passphrase-stdin -d 'Read the key\'s passphrase from stdin (prompted without echo on a terminal)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l password-stdin -d 'Read the password from stdin (prompted without echo on a terminal)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l insecure-key-file -d 'Take a key file that other users may read (ssh refuses those)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l accept-new -d 'Trust the key the server shows now (trust on first use)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -l json -d 'Print the new profile as JSON'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from list" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from list" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from show" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from show" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from remove" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from remove" -s y -l yes -d 'Do not ask (for scripts; without a terminal this is required)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from hostkey" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from hostkey" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from hostkey" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from hostkey" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from trust" -l host-key -d 'The new host key\'s fingerprint, as `ssh-keygen -lf` prints it on the server' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from trust" -l key-file -d 'Private key file (OpenSSH or PEM), read with your own permissions and sent once; tetherd stores it sealed' -r -F
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from trust" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from trust" -l key-passphrase-stdin -d 'Read the key\'s passphrase from stdin (prompted without echo on a terminal)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from trust" -l password-stdin -d 'Read the password from stdin (prompted without echo on a terminal)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from trust" -l insecure-key-file -d 'Take a key file that other users may read (ssh refuses those)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from trust" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from trust" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from trust" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l host -d 'New server host name or address' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l port -d 'New SSH port' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l user -d 'New remote user name' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l key-file -d 'Private key file (OpenSSH or PEM), read with your own permissions and sent once; tetherd stores it sealed' -r -F
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l host-key -d 'Pin this host key instead of the current one (for a moved server)' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l connect-timeout -d 'Seconds to wait for the connection and the SSH handshake' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l keepalive -d 'Seconds of silence before a keepalive' -r
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l key-passphrase-stdin -d 'Read the key\'s passphrase from stdin (prompted without echo on a terminal)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l password-stdin -d 'Read the password from stdin (prompted without echo on a terminal)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l insecure-key-file -d 'Take a key file that other users may read (ssh refuses those)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l accept-new -d 'Pin the key the server shows now, where none is pinned for its address (with a new --host or --port); never accepts a changed key: that needs `tether profile trust`'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a server profile: pins its host key and checks the credential authenticates before storing anything'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from help" -f -a "list" -d 'List profiles'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one profile (never its secret)'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a profile and its sealed secret; asks first on a terminal, and says when the profile holds the only copy of a private key'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from help" -f -a "hostkey" -d 'Show the host key(s) pinned for a profile'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from help" -f -a "trust" -d 'Re-learn a server\'s changed host key, with explicit consent: shows the old and new fingerprints and asks, or takes --host-key without a terminal'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from help" -f -a "set" -d 'Change a profile\'s fields or rotate its secret; the result must log in before it is stored. Changing where the secret goes (host, port, user, host key) needs root or a new credential in the same command'
complete -c tether -n "__fish_tether_using_subcommand profile; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand exec" -l timeout -d 'End the command after SECS seconds (SIGTERM, then the channel is closed) and exit 124' -r
complete -c tether -n "__fish_tether_using_subcommand exec" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand exec" -s t -l tty -d 'Run the command on a pseudo-terminal (for sudo prompts, top -b, ...)'
complete -c tether -n "__fish_tether_using_subcommand exec" -s n -d 'Do not read stdin: the command gets end-of-file at once (as ssh -n)'
complete -c tether -n "__fish_tether_using_subcommand exec" -s q -l quiet -d 'Quiet: no diagnostics of tether\'s own (the command\'s output is untouched)'
complete -c tether -n "__fish_tether_using_subcommand exec" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand exec" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand shell" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand shell" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand shell" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand cp" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand cp" -s r -l recursive -d 'Copy directories and everything in them'
complete -c tether -n "__fish_tether_using_subcommand cp" -s p -l preserve -d 'Keep modes (setuid and setgid too) and modification times; without it a new file gets the source\'s permission bits and an existing one keeps its own'
complete -c tether -n "__fish_tether_using_subcommand cp" -l inplace -d 'Write into an existing target directly instead of a temporary file renamed over it: for a file whose directory you may not write. Not atomic: an interrupted copy leaves it partly written (as scp does)'
complete -c tether -n "__fish_tether_using_subcommand cp" -s L -l dereference -d 'Follow symlinks and copy what they point to (by default a symlink is copied as a symlink, so nothing outside the tree is read)'
complete -c tether -n "__fish_tether_using_subcommand cp" -l json -d 'Print a JSON summary (files, bytes, seconds) instead of progress'
complete -c tether -n "__fish_tether_using_subcommand cp" -s q -l quiet -d 'No progress line and no summary'
complete -c tether -n "__fish_tether_using_subcommand cp" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand cp" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -a "ls" -d 'List a directory (or describe one file)'
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -a "stat" -d 'Describe one path (a symlink itself, not what it points to)'
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -a "mkdir" -d 'Make directories'
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -a "rm" -d 'Remove files or symlinks'
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -a "rmdir" -d 'Remove empty directories'
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -a "mv" -d 'Rename or move, replacing TO if it is a file'
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -a "chmod" -d 'Change permission bits (octal, e.g. 640)'
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -a "ln" -d 'Make a symbolic link: ln -s TARGET LINK'
complete -c tether -n "__fish_tether_using_subcommand files; and not __fish_seen_subcommand_from ls stat mkdir rm rmdir mv chmod ln help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from ls" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from ls" -s l -d 'Long listing: kind and mode, owner, size, modification time'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from ls" -s a -l all -d 'Show entries whose names start with `.` too'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from ls" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from stat" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from stat" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from stat" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from stat" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from mkdir" -s m -l mode -d 'Permission bits in octal, e.g. 750' -r
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from mkdir" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from mkdir" -s p -l parents -d 'Make missing parents too; an existing directory is no error'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from mkdir" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from mkdir" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from rm" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from rm" -s r -l recursive -d 'Remove directories and everything in them'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from rmdir" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from rmdir" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from rmdir" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from mv" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from mv" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from mv" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from chmod" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from chmod" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from chmod" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from ln" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from ln" -s s -l symbolic -d 'Make a symbolic link (the only kind SFTP can make)'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from ln" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from ln" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List a directory (or describe one file)'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from help" -f -a "stat" -d 'Describe one path (a symlink itself, not what it points to)'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from help" -f -a "mkdir" -d 'Make directories'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove files or symlinks'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from help" -f -a "rmdir" -d 'Remove empty directories'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from help" -f -a "mv" -d 'Rename or move, replacing TO if it is a file'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from help" -f -a "chmod" -d 'Change permission bits (octal, e.g. 640)'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from help" -f -a "ln" -d 'Make a symbolic link: ln -s TARGET LINK'
complete -c tether -n "__fish_tether_using_subcommand files; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand grant; and not __fish_seen_subcommand_from add set list remove help" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand grant; and not __fish_seen_subcommand_from add set list remove help" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand grant; and not __fish_seen_subcommand_from add set list remove help" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand grant; and not __fish_seen_subcommand_from add set list remove help" -f -a "add" -d 'Give a user or group access to a profile (refused where they have a grant there: `grant set` changes one)'
complete -c tether -n "__fish_tether_using_subcommand grant; and not __fish_seen_subcommand_from add set list remove help" -f -a "set" -d 'Replace a user\'s or group\'s grant on a profile with the one the flags describe, and say what changed'
complete -c tether -n "__fish_tether_using_subcommand grant; and not __fish_seen_subcommand_from add set list remove help" -f -a "list" -d 'List grants: all of them for root and a profile\'s owners, else your own'
complete -c tether -n "__fish_tether_using_subcommand grant; and not __fish_seen_subcommand_from add set list remove help" -f -a "remove" -d 'Take a grant away'
complete -c tether -n "__fish_tether_using_subcommand grant; and not __fish_seen_subcommand_from add set list remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -l user -d 'The user (name or uid) the grant is for' -r
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -l group -d 'The group (name or gid) the grant is for: every member gets it' -r
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -l role -d 'viewer: see the profile; operator: use it within the policy; owner: also change it, its actions and its grants' -r -f -a "viewer\t''
operator\t''
owner\t''"
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -l exec -d '`any` for any command, or a comma-separated list of named actions; default: none' -r
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -l sftp -d 'SFTP and `tether cp` access' -r -f -a "none\t''
read\t''
write\t''"
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -l path -d 'Limit SFTP to these absolute path prefixes (symlinks and `..` are resolved on the server before the check)' -r
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -l shell -d 'Allow interactive shells'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -l unattended -d 'For cron and services: no MFA needed, but only named actions may run'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -l user -d 'The user (name or uid) the grant is for' -r
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -l group -d 'The group (name or gid) the grant is for: every member gets it' -r
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -l role -d 'viewer: see the profile; operator: use it within the policy; owner: also change it, its actions and its grants' -r -f -a "viewer\t''
operator\t''
owner\t''"
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -l exec -d '`any` for any command, or a comma-separated list of named actions; default: none' -r
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -l sftp -d 'SFTP and `tether cp` access' -r -f -a "none\t''
read\t''
write\t''"
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -l path -d 'Limit SFTP to these absolute path prefixes (symlinks and `..` are resolved on the server before the check)' -r
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -l shell -d 'Allow interactive shells'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -l unattended -d 'For cron and services: no MFA needed, but only named actions may run'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from list" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from list" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from remove" -l user -r
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from remove" -l group -r
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from remove" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from help" -f -a "add" -d 'Give a user or group access to a profile (refused where they have a grant there: `grant set` changes one)'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from help" -f -a "set" -d 'Replace a user\'s or group\'s grant on a profile with the one the flags describe, and say what changed'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from help" -f -a "list" -d 'List grants: all of them for root and a profile\'s owners, else your own'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Take a grant away'
complete -c tether -n "__fish_tether_using_subcommand grant; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand action; and not __fish_seen_subcommand_from add set list remove help" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand action; and not __fish_seen_subcommand_from add set list remove help" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand action; and not __fish_seen_subcommand_from add set list remove help" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand action; and not __fish_seen_subcommand_from add set list remove help" -f -a "add" -d 'Define a named action (root): an argv template where {key:PATTERN} is a parameter whose value must match PATTERN (e.g. backup -- pg_dump --dbname={db:[a-z_]+}); refused where the name exists'
complete -c tether -n "__fish_tether_using_subcommand action; and not __fish_seen_subcommand_from add set list remove help" -f -a "set" -d 'Replace an action\'s template (root), and show the old one'
complete -c tether -n "__fish_tether_using_subcommand action; and not __fish_seen_subcommand_from add set list remove help" -f -a "list" -d 'List a profile\'s actions'
complete -c tether -n "__fish_tether_using_subcommand action; and not __fish_seen_subcommand_from add set list remove help" -f -a "remove" -d 'Remove a named action'
complete -c tether -n "__fish_tether_using_subcommand action; and not __fish_seen_subcommand_from add set list remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from add" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from set" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from list" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from list" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from remove" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from help" -f -a "add" -d 'Define a named action (root): an argv template where {key:PATTERN} is a parameter whose value must match PATTERN (e.g. backup -- pg_dump --dbname={db:[a-z_]+}); refused where the name exists'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from help" -f -a "set" -d 'Replace an action\'s template (root), and show the old one'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from help" -f -a "list" -d 'List a profile\'s actions'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a named action'
complete -c tether -n "__fish_tether_using_subcommand action; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand run" -l timeout -d 'End the action after SECS seconds and exit 124' -r
complete -c tether -n "__fish_tether_using_subcommand run" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand run" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand run" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand mfa; and not __fish_seen_subcommand_from enroll invite confirm status reset help" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand mfa; and not __fish_seen_subcommand_from enroll invite confirm status reset help" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand mfa; and not __fish_seen_subcommand_from enroll invite confirm status reset help" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand mfa; and not __fish_seen_subcommand_from enroll invite confirm status reset help" -f -a "enroll" -d 'Enrol a TOTP authenticator: shows a QR code and the otpauth URI, asks for a code to confirm, then shows ten backup codes once. With --json, prints the URI and secret and stops; confirm with `tether mfa confirm`'
complete -c tether -n "__fish_tether_using_subcommand mfa; and not __fish_seen_subcommand_from enroll invite confirm status reset help" -f -a "invite" -d 'Root: a one-time code that lets USER enrol once (for hosts with `[mfa] enrolment = "invite"`); shown once, void after --ttl'
complete -c tether -n "__fish_tether_using_subcommand mfa; and not __fish_seen_subcommand_from enroll invite confirm status reset help" -f -a "confirm" -d 'Confirm a pending enrolment with a code read from stdin'
complete -c tether -n "__fish_tether_using_subcommand mfa; and not __fish_seen_subcommand_from enroll invite confirm status reset help" -f -a "status" -d 'Whether you are enrolled and logged in, and for how long'
complete -c tether -n "__fish_tether_using_subcommand mfa; and not __fish_seen_subcommand_from enroll invite confirm status reset help" -f -a "reset" -d 'Root: clear USER\'s lockout; with --unenroll also remove their TOTP (for a lost phone) and end their MFA sessions'
complete -c tether -n "__fish_tether_using_subcommand mfa; and not __fish_seen_subcommand_from enroll invite confirm status reset help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from enroll" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from enroll" -l invite -d 'Read the one-time invite code root gave you from stdin first (where enrolment is by invite)'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from enroll" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from enroll" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from enroll" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from invite" -l ttl -d 'How long the code stays valid: 30m, 12h, 7d (at most 7d)' -r
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from invite" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from invite" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from invite" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from invite" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from confirm" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from confirm" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from confirm" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from confirm" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from status" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from status" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from reset" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from reset" -l unenroll
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from reset" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from help" -f -a "enroll" -d 'Enrol a TOTP authenticator: shows a QR code and the otpauth URI, asks for a code to confirm, then shows ten backup codes once. With --json, prints the URI and secret and stops; confirm with `tether mfa confirm`'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from help" -f -a "invite" -d 'Root: a one-time code that lets USER enrol once (for hosts with `[mfa] enrolment = "invite"`); shown once, void after --ttl'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from help" -f -a "confirm" -d 'Confirm a pending enrolment with a code read from stdin'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from help" -f -a "status" -d 'Whether you are enrolled and logged in, and for how long'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from help" -f -a "reset" -d 'Root: clear USER\'s lockout; with --unenroll also remove their TOTP (for a lost phone) and end their MFA sessions'
complete -c tether -n "__fish_tether_using_subcommand mfa; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand login" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand login" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand login" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand login" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand logout" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand logout" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand logout" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand whoami" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand whoami" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand whoami" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand whoami" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -l since -d 'Events from this time on: Unix seconds, YYYY-MM-DD[THH:MM[:SS]] (UTC), or an age such as 30m, 12h, 7d' -r
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -l until -d 'Events up to this time (same forms)' -r
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -l user -d 'Only this user\'s events (name or uid)' -r
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -l profile -d 'Only this profile\'s events' -r
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -l op -d 'Only operations starting with OP (exec, sftp, sftp.upload, grant, mfa...)' -r
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -l json -d 'Print JSON: one array, or with -f one event per line'
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -s f -l follow -d 'Keep printing new events as they are written'
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -f -a "verify" -d 'Check the whole hash chain (root); exits 1 and names the first bad event if any was edited, removed or reordered'
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -f -a "hmac" -d 'Root: the HMAC the trail holds for a sensitive value, read from stdin'
complete -c tether -n "__fish_tether_using_subcommand audit; and not __fish_seen_subcommand_from verify hmac help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand audit; and __fish_seen_subcommand_from verify" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand audit; and __fish_seen_subcommand_from verify" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand audit; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand audit; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand audit; and __fish_seen_subcommand_from hmac" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand audit; and __fish_seen_subcommand_from hmac" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand audit; and __fish_seen_subcommand_from hmac" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check the whole hash chain (root); exits 1 and names the first bad event if any was edited, removed or reordered'
complete -c tether -n "__fish_tether_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "hmac" -d 'Root: the HMAC the trail holds for a sensitive value, read from stdin'
complete -c tether -n "__fish_tether_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand session; and not __fish_seen_subcommand_from list close help" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand session; and not __fish_seen_subcommand_from list close help" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand session; and not __fish_seen_subcommand_from list close help" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand session; and not __fish_seen_subcommand_from list close help" -f -a "list" -d 'Live connections: profile, server, age, idle time, channels, bytes. A channel marked stalled has a caller that stopped reading its output: that connection takes no new commands until the caller reads on'
complete -c tether -n "__fish_tether_using_subcommand session; and not __fish_seen_subcommand_from list close help" -f -a "close" -d 'Close a profile\'s connections now (running commands on them fail)'
complete -c tether -n "__fish_tether_using_subcommand session; and not __fish_seen_subcommand_from list close help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand session; and __fish_seen_subcommand_from list" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand session; and __fish_seen_subcommand_from list" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand session; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand session; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand session; and __fish_seen_subcommand_from close" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand session; and __fish_seen_subcommand_from close" -l json -d 'Print JSON for scripts'
complete -c tether -n "__fish_tether_using_subcommand session; and __fish_seen_subcommand_from close" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand session; and __fish_seen_subcommand_from close" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "list" -d 'Live connections: profile, server, age, idle time, channels, bytes. A channel marked stalled has a caller that stopped reading its output: that connection takes no new commands until the caller reads on'
complete -c tether -n "__fish_tether_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "close" -d 'Close a profile\'s connections now (running commands on them fail)'
complete -c tether -n "__fish_tether_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand seal" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand seal" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand seal" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand completions" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand completions" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand completions" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand man" -l socket -d 'The daemon\'s socket [default: /run/tether/tether.sock if it exists, else the `tetherd --user` socket]' -r -F
complete -c tether -n "__fish_tether_using_subcommand man" -s h -l help -d 'Print help'
complete -c tether -n "__fish_tether_using_subcommand man" -s V -l version -d 'Print version'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "status" -d 'Show the daemon\'s mode, socket, store and who you are to it'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "profile" -d 'Add, list, show and remove server profiles'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "exec" -d 'Run a command on a profile\'s server; its exit status is tether\'s'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "shell" -d 'Open an interactive terminal session (a login shell, or COMMAND on a pseudo-terminal); `~.` at the start of a line disconnects'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "cp" -d 'Copy files to or from a server: upload LOCAL... NAME:PATH, download NAME:PATH... LOCAL; `-` is stdin or stdout'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "files" -d 'One file operation on a server: ls, stat, mkdir, rm, rmdir, mv, chmod, ln -s (also as `tether sftp`)'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "grant" -d 'Who may use which profile, and how (root and profile owners)'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "action" -d 'Named actions: argv templates that cron jobs and restricted users run'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "run" -d 'Run a named action: tether run PROFILE ACTION [key=value ...]'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "mfa" -d 'TOTP enrolment and status'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "login" -d 'Open an MFA session for this login session with a TOTP or backup code'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "logout" -d 'End this login session\'s MFA session'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "whoami" -d 'Who the daemon sees: uid, groups, MFA state, grants'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "audit" -d 'The audit trail: who used which credential for what, and when'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "session" -d 'List and close the daemon\'s live SSH connections'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "seal" -d 'Root: wipe the daemon\'s master key from memory and close every SSH connection (as SIGUSR1 does); restart tetherd to use it again'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "completions" -d 'Print a shell completion script to stdout (edits no file)'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "man" -d 'Print the tether(1) manual page (roff) to stdout'
complete -c tether -n "__fish_tether_using_subcommand help; and not __fish_seen_subcommand_from status profile exec shell cp files grant action run mfa login logout whoami audit session seal completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from profile" -f -a "add" -d 'Add a server profile: pins its host key and checks the credential authenticates before storing anything'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from profile" -f -a "list" -d 'List profiles'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from profile" -f -a "show" -d 'Show one profile (never its secret)'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from profile" -f -a "remove" -d 'Remove a profile and its sealed secret; asks first on a terminal, and says when the profile holds the only copy of a private key'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from profile" -f -a "hostkey" -d 'Show the host key(s) pinned for a profile'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from profile" -f -a "trust" -d 'Re-learn a server\'s changed host key, with explicit consent: shows the old and new fingerprints and asks, or takes --host-key without a terminal'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from profile" -f -a "set" -d 'Change a profile\'s fields or rotate its secret; the result must log in before it is stored. Changing where the secret goes (host, port, user, host key) needs root or a new credential in the same command'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from files" -f -a "ls" -d 'List a directory (or describe one file)'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from files" -f -a "stat" -d 'Describe one path (a symlink itself, not what it points to)'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from files" -f -a "mkdir" -d 'Make directories'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from files" -f -a "rm" -d 'Remove files or symlinks'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from files" -f -a "rmdir" -d 'Remove empty directories'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from files" -f -a "mv" -d 'Rename or move, replacing TO if it is a file'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from files" -f -a "chmod" -d 'Change permission bits (octal, e.g. 640)'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from files" -f -a "ln" -d 'Make a symbolic link: ln -s TARGET LINK'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from grant" -f -a "add" -d 'Give a user or group access to a profile (refused where they have a grant there: `grant set` changes one)'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from grant" -f -a "set" -d 'Replace a user\'s or group\'s grant on a profile with the one the flags describe, and say what changed'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from grant" -f -a "list" -d 'List grants: all of them for root and a profile\'s owners, else your own'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from grant" -f -a "remove" -d 'Take a grant away'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from action" -f -a "add" -d 'Define a named action (root): an argv template where {key:PATTERN} is a parameter whose value must match PATTERN (e.g. backup -- pg_dump --dbname={db:[a-z_]+}); refused where the name exists'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from action" -f -a "set" -d 'Replace an action\'s template (root), and show the old one'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from action" -f -a "list" -d 'List a profile\'s actions'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from action" -f -a "remove" -d 'Remove a named action'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from mfa" -f -a "enroll" -d 'Enrol a TOTP authenticator: shows a QR code and the otpauth URI, asks for a code to confirm, then shows ten backup codes once. With --json, prints the URI and secret and stops; confirm with `tether mfa confirm`'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from mfa" -f -a "invite" -d 'Root: a one-time code that lets USER enrol once (for hosts with `[mfa] enrolment = "invite"`); shown once, void after --ttl'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from mfa" -f -a "confirm" -d 'Confirm a pending enrolment with a code read from stdin'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from mfa" -f -a "status" -d 'Whether you are enrolled and logged in, and for how long'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from mfa" -f -a "reset" -d 'Root: clear USER\'s lockout; with --unenroll also remove their TOTP (for a lost phone) and end their MFA sessions'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "verify" -d 'Check the whole hash chain (root); exits 1 and names the first bad event if any was edited, removed or reordered'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "hmac" -d 'Root: the HMAC the trail holds for a sensitive value, read from stdin'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "list" -d 'Live connections: profile, server, age, idle time, channels, bytes. A channel marked stalled has a caller that stopped reading its output: that connection takes no new commands until the caller reads on'
complete -c tether -n "__fish_tether_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "close" -d 'Close a profile\'s connections now (running commands on them fail)'
