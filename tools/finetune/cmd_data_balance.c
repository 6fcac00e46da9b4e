/* cmd_data_balance.c — `finetune data balance` (in progress). */
#include "cli.h"
int ft_cmd_data_balance(int argc, char **argv) { (void)argc; (void)argv; return 2; }
