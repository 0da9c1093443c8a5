/* commands.h — the `sketchgn` commands that main.c's command table dispatches to. Each takes its
 * own argv (argv[0] is the command's name), reads its options with opts_parse (opts.h) and
 * returns the exit status: 0 success, 1 runtime failure, 2 usage or bad input. */
#ifndef SGN_CLI_COMMANDS_H
#define SGN_CLI_COMMANDS_H

int sgn_cmd_train(int argc, char **argv);   /* train.c */
int sgn_cmd_eval(int argc, char **argv);    /* eval.c */
int sgn_cmd_predict(int argc, char **argv); /* eval.c */
int sgn_cmd_info(int argc, char **argv);    /* info.c */
int sgn_cmd_bench(int argc, char **argv);   /* bench.c */

#endif
