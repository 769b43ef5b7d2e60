/* The single definition of genq's process-wide state; see globals.h. */
#include "globals.h"
#include "log.h"

struct genq_globals genq_g = {
        .log_level = LOG_LVL_INFO,
        .log_json = 0,
        .log_debug = 0,
        .log_ident = "genq",
};
