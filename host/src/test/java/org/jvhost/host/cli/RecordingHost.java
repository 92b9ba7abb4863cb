package org.jvhost.host.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.server.DeviceSnapshot;
import org.jvhost.engine.server.Host;
import org.jvhost.engine.server.SocketAccess;
import org.jvhost.host.devices.DeviceHost;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.VhostUserDevice;

/** Stands in for the engine's Host: records what serve asked for. */
final class RecordingHost implements DeviceHost {
    final List<String> names = new ArrayList<>();
    final List<VhostUserDevice> devices = new ArrayList<>();
    final List<Path> sockets = new ArrayList<>();
    final List<Host.Mode> modes = new ArrayList<>();
    final List<SocketAccess> access = new ArrayList<>();
    final List<Integer> fds = new ArrayList<>();
    boolean closed;
    boolean failBind;

    @Override
    public DeviceContext newContext(String deviceName) {
        names.add(deviceName);
        return () -> deviceName;
    }

    @Override
    public void addDevice(DeviceContext context, VhostUserDevice device, Path socket, Host.Mode mode)
            throws IOException {
        if (failBind) {
            throw new IOException("cannot bind " + socket + ": Address already in use");
        }
        devices.add(device);
        sockets.add(socket);
        modes.add(mode);
    }

    @Override
    public void addDevice(DeviceContext context, VhostUserDevice device, Path socket, Host.Mode mode,
            SocketAccess socketAccess) throws IOException {
        addDevice(context, device, socket, mode);
        access.add(socketAccess);
    }

    @Override
    public void addDevice(DeviceContext context, VhostUserDevice device, int listeningFd,
            SocketAccess socketAccess) {
        devices.add(device);
        fds.add(listeningFd);
        access.add(socketAccess);
    }

    @Override
    public boolean removeDevice(DeviceContext context) {
        return false;
    }

    @Override
    public DeviceSnapshot snapshot(DeviceContext context) {
        return null;
    }

    @Override
    public void close() {
        closed = true;
    }
}
