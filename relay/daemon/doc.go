// Package daemon is the running relay: Run opens the spool, serves package
// relay's API on loopback listeners behind the intake and handler onion
// services (or, with Config.NoTor, on one loopback address), and keeps what
// runs beside it until its context ends: the status file, the control
// socket backups read the spool through, the /health and /metrics monitor,
// the notification command, the sweeps and the tor watchdog. It also names
// the files it keeps in the data directory, so the relay's other commands
// can read them. It never listens beyond loopback, and never logs a body, a
// key, a token or an address. It knows nothing of flags, cobra, hints or
// exit codes: it returns typed errors (ListenError, NotInitialisedError) and
// leaves explaining them to the program.
package daemon
