/* ringkv-lincheck: "ringkv lincheck" as its own executable, usable before
 * and alongside the ringkv CLI. */
#include "lincheck_cli.h"

int main(int argc, char **argv)
{
	return lincheck_main(argc, argv);
}
