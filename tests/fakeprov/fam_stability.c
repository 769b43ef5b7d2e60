/* PLACEHOLDER family until its implementation lands: serves nothing
 * (every request gets a plain 404).  Replaced whole. */
#include <string.h>

#include "fakeprov.h"

static const struct fp_route routes[] = {{NULL, NULL, NULL}};
static const struct fp_errdef errors[] = {{NULL, NULL}};

static const char *get_key(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "Authorization");

        return h && !strncmp(h, "Bearer ", 7) ? h + 7 : h;
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        (void)call;
        fpresp_set(resp, 404, "{\"error\":\"not found\"}", 21);
}

static const char *const defaults[] = {"stability", NULL};

const struct fp_family fam_stability = {
        .name = "stability",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
