/* A UDP echo server for Shoal's tests: answers each datagram with "<host name> <datagram>".
 * busybox's nc has no UDP, and the test images have nothing else that serves it. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 9053;
    char host[256] = "", in[1024], out[1400];
    gethostname(host, sizeof host - 1);
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = INADDR_ANY};
    if (sock < 0 || bind(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("udp-echo");
        return 1;
    }
    for (;;) {
        struct sockaddr_in peer;
        socklen_t size = sizeof peer;
        ssize_t got = recvfrom(sock, in, sizeof in - 1, 0, (struct sockaddr *)&peer, &size);
        if (got < 0) continue;
        in[got] = 0;
        int len = snprintf(out, sizeof out, "%s %s", host, in);
        sendto(sock, out, len, 0, (struct sockaddr *)&peer, size);
    }
}
