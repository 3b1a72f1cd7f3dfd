/* tools/mesarun.c - placeholder */
int main(void) { return 0; }
