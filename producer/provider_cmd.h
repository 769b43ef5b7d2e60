/**
 * @file provider_cmd.h
 * @brief `genq provider`: steer every worker's providers and keys at run
 *        time through provider_overrides, provider_key_state and
 *        provider_quota (schema 0007), and list their live state.
 */
#ifndef GENQ_PROVIDER_CMD_H
#define GENQ_PROVIDER_CMD_H

/**
 * @brief The `genq provider` subcommand; argv[0] is "provider".
 * @returns the exit code: 0 ok, 1 failure (database), 2 usage error.
 */
int cmd_provider(int argc, char **argv);

#endif
