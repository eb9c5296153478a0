complete --keep-order --exclusive --command tether --arguments "(COMPLETE=fish tether -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
