/* A first program for the lab: build it as the kernel is built, for 32-bit x86.
 *
 *     gcc -m32 -Wall -o hello hello.c && ./hello
 */
#include <stdio.h>

int main(void)
{
	printf("hello, os-lab: %zu-bit pointers\n", sizeof(void *) * 8);
	return 0;
}
