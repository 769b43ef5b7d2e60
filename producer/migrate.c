/* `genq migrate`: apply the embedded schema migrations (schema.h). */
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "gconf.h"
#include "pgutil.h"
#include "schema.h"

int cmd_migrate(int argc, char **argv)
{
        struct gconf g = {0};
        char errstr[1024];
        int applied = 0, rc = 1;
        PGconn *conn;
        conf_t *c = gconf_load_args(&argc, argv, errstr, sizeof(errstr));

        if (!c) {
                fprintf(stderr, "genq migrate: %s\n", errstr);
                return 2;
        }
        if (argc > 1) {
                fprintf(stderr, "usage: genq migrate [-c FILE] "
                                "[-X postgres.dsn=DSN]\n"
                                "Applies schema migrations not yet applied "
                                "(safe to run concurrently).\n");
                conf_destroy(c);
                return 2;
        }
        if (gconf_bind(c, &g, errstr, sizeof(errstr))) {
                fprintf(stderr, "genq migrate: %s\n", errstr);
                goto out_free_conf;
        }
        conn = pgutil_connect(g.pg_dsn, "genq-migrate", errstr,
                              sizeof(errstr));
        if (!conn) {
                fprintf(stderr, "genq migrate: %s\n", errstr);
                goto out_free_conf;
        }
        if (schema_migrate(conn, &applied, errstr, sizeof(errstr))) {
                fprintf(stderr, "genq migrate: %s\n", errstr);
        } else {
                printf("genq migrate: %d applied, schema at version %d\n",
                       applied, schema_version(conn, errstr, sizeof(errstr)));
                rc = 0;
        }
        PQfinish(conn);
out_free_conf:
        gconf_clear(&g);
        conf_destroy(c);
        return rc;
}
