/* `spillway ctl`: the command-line client of the admin socket. */
#ifndef SPILLWAY_CTL_H
#define SPILLWAY_CTL_H

/* argv[0] is "ctl". Returns the process exit code. */
int ctl_main(int argc, char **argv);

#endif
